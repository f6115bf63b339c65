//! ringlb: a Layer-4 TCP/WebSocket connection balancer for GPU inference fleets, on io_uring
//! (or epoll where io_uring is blocked).
//!
//! The tree follows the architecture:
//! - [`engine`]: thread-per-core workers, each with one I/O driver (io_uring, or epoll),
//!   relaying bytes unchanged;
//! - [`balance`]: the backend table shared by all workers, and one file per strategy;
//! - [`config`]: the TOML config, parsed into typed, validated values;
//! - [`check`]: `ringlb check`: the config, then every address it names, tried once;
//! - [`clock`]: the monotonic clock the engine and the table share;
//! - [`control`]: the control plane's thread and runtime (admin, health checks, reload);
//! - [`admin`]: the admin API on the control plane: metrics, status, page, backend overrides;
//! - [`dns`]: backends named by DNS, resolved on the control plane and re-resolved live;
//! - [`health`]: active health checks, run on the control plane, published to the table;
//! - [`process`]: the `ringlb run` process: start-up, signals (drain, reload), the hand-over
//!   to a new process (binary upgrade), the stop;
//! - [`route`]: content routing at L4: the parsers and rules that pick a connection's pool
//!   from its first bytes (PROXY, TLS ClientHello, HTTP head, JSON `model`);
//! - [`tools`]: everything that is not the balancer itself — the mock fleet, the demo, the load
//!   tool and the bench report; `engine` and `balance` never depend on it.
//!
//! `unsafe` is denied everywhere except the I/O drivers and their buffer layer (`engine::uring`,
//! `engine::epoll`) and the
//! one adoption of a descriptor received over SCM_RIGHTS (`process::handover::wire`).
#![deny(unsafe_code)]

pub mod admin;
pub mod balance;
pub mod check;
pub mod clock;
pub mod config;
pub mod control;
pub mod dns;
pub mod engine;
pub mod health;
pub mod process;
pub mod route;
pub mod tools;
