//! Why the epoll driver could not be set up, or stopped being usable.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum EpollError {
    /// Setting up the driver (its epoll instance, eventfd or receive buffers) failed.
    #[error("epoll driver setup failed: {what}: {error}")]
    Setup {
        what: &'static str,
        /// Not a `source()`: its text is already in the message.
        error: io::Error,
    },
    /// epoll_wait failed with something other than an interruption: the worker can no longer
    /// learn what its sockets do.
    #[error("epoll_wait failed: {0}")]
    Wait(io::Error),
}
