//! Engine tests that need the crate's insides: a worker made to panic, or to lose its ring,
//! seen by the server, which stops the others and reports it.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use super::{EngineError, Server, UringError};

/// Fault hooks a worker checks once per loop turn (only in test builds).
pub(super) const FAULT_PANIC: u8 = 1;
/// As if the kernel had dropped completions (EBADR): the worker cannot trust its ring.
pub(super) const FAULT_RING: u8 = 2;

/// Starts two workers, injects `fault` into worker `id`, and returns what `join` returned
/// once every worker has stopped (and no listener accepts any more).
fn inject(id: usize, fault: u8) -> Result<(), EngineError> {
    let text = "[runtime]\nworkers = 2\n[[listener]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\n\
                pool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"127.0.0.1:9\"\n";
    let cfg = crate::config::parse(text, "t.toml").unwrap();
    let mut server = Server::start(&cfg).unwrap();
    let addr = server.listener_addr("t").unwrap();
    server.faults[id].store(fault, Ordering::Release);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = server.join();
        let _ = tx.send(result);
    });
    // The worker reaches its fault within one wait (at most 500 ms); the other is stopped.
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("join returned: the dead worker was noticed and the others stopped");
    // The dead worker's ring is torn down by the kernel in the background (its pending
    // accept holds the listening socket until then).
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < end, "a worker still accepts");
        std::thread::sleep(Duration::from_millis(5));
    }
    result
}

#[test]
fn a_worker_that_panics_stops_the_server_with_its_error() {
    let result = inject(1, FAULT_PANIC);
    assert!(
        matches!(result, Err(EngineError::WorkerPanicked(1))),
        "{result:?}"
    );
}

#[test]
fn a_worker_that_cannot_trust_its_ring_stops_the_server_with_the_reason() {
    let result = inject(0, FAULT_RING);
    assert!(
        matches!(result, Err(EngineError::Uring(UringError::CompletionsLost))),
        "{result:?}"
    );
}
