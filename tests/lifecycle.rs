//! Timeouts and leaks: connect timeout against a real black hole, idle timeout on the wall
//! clock, and 5,000
//! sequential connections leaving descriptors and backend counts at their baseline.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

fn config(connect_timeout: &str, idle_timeout: &str, retries: u32, n: usize) -> String {
    pool_config(
        &format!(
            "balance = \"round_robin\"\nconnect_timeout = \"{connect_timeout}\"\n\
             idle_timeout = \"{idle_timeout}\"\nretries = {retries}"
        ),
        &vec![""; n],
    )
}

#[test]
fn connect_timeout_closes_the_client_when_no_backend_answers() {
    let (_hole, _fill, hole) = black_hole();
    let server = start(&config("200ms", "1h", 0, 1), &[hole]);
    let started = Instant::now();
    let mut s = connect(addr(&server));
    let mut buf = [0u8; 8];
    let r = s.read(&mut buf);
    assert!(matches!(r, Ok(0)) || r.is_err(), "client closed: {r:?}");
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(server.stats().connect_failures, 1);
    wait_for("released", || active(&server) == vec![0]);
}

#[test]
fn connect_timeout_retries_another_backend() {
    let (_hole, _fill, hole) = black_hole();
    let server = start(&config("150ms", "1h", 1, 2), &[hole, echo_backend()]);
    for _ in 0..4 {
        let mut s = connect(addr(&server));
        s.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }
    assert!(server.stats().connect_failures >= 1);
}

/// On the system clock (the manual-clock tests in timeouts.rs cover which streams it spares):
/// a silent stream is closed after about its idle timeout, not before.
#[test]
fn idle_timeout_closes_a_silent_stream_on_the_wall_clock() {
    let server = start(&config("1s", "300ms", 0, 1), &[echo_backend()]);
    let mut s = connect(addr(&server));
    s.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    s.read_exact(&mut one).unwrap();
    let started = Instant::now();
    let r = s.read(&mut one);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "an idle stream that neither side finished is cut with a reset: {r:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.stats().idle_timeouts, 1);
    wait_for("released", || active(&server) == vec![0]);
}

#[test]
fn five_thousand_sequential_connections_leave_nothing_behind() {
    let backend = echo_backend();
    let server = start(&config("1s", "1h", 0, 1), &[backend]);
    let to = addr(&server);
    // Warm up once so lazily created descriptors (thread pools, etc.) are in the baseline.
    let mut s = connect(to);
    s.write_all(b"w").unwrap();
    let mut one = [0u8; 1];
    s.read_exact(&mut one).unwrap();
    drop(s);
    wait_for("warm-up released", || {
        active(&server) == vec![0] && server.stats().connections == 0
    });
    let baseline = open_fds();
    for i in 0..5000u32 {
        let mut s = connect(to);
        let msg = i.to_le_bytes();
        s.write_all(&msg).unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    wait_for("counts back to zero", || active(&server) == vec![0]);
    wait_for("descriptors back to baseline", || {
        server.stats().connections == 0 && open_fds() <= baseline
    });
    assert_eq!(server.stats().accepted, 5001);
}
