//! Engine tests that need the crate's insides: a worker made to panic, seen by the server.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use super::{EngineError, Server};

#[test]
fn a_worker_that_panics_stops_the_server_with_its_error() {
    let text = "[runtime]\nworkers = 2\n[[listener]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\n\
                pool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"127.0.0.1:9\"\n";
    let cfg = crate::config::parse(text, "t.toml").unwrap();
    let mut server = Server::start(&cfg).unwrap();
    let addr = server.listener_addr("t").unwrap();
    server.faults[1].store(true, Ordering::Release);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = server.join();
        let _ = tx.send(result);
    });
    // Worker 1 reaches its fault within one wait (at most 500 ms); worker 0 is then stopped.
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("join returned: the dead worker was noticed and the others stopped");
    assert!(
        matches!(result, Err(EngineError::WorkerPanicked(1))),
        "{result:?}"
    );
    // The dead worker's ring is torn down by the kernel in the background (its pending
    // accept holds the listening socket until then).
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < end, "a worker still accepts");
        std::thread::sleep(Duration::from_millis(5));
    }
}
