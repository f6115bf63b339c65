//! A backend that fails a stream before its first byte (resets or closes after the request,
//! or stays silent past `first_byte_timeout`) gets its request replayed to another backend,
//! unseen by the client; where that cannot be done whole, the client sees a reset, never a
//! cut answer. Real sockets on 127.0.0.1, byte integrity by BLAKE3.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;

const REQUEST: usize = 10_000;
const CLIENTS: u64 = 16;

#[derive(Clone, Copy)]
enum Then {
    Reset,
    Fin,
    /// Holds the connection without a byte until the peer goes.
    Silent,
    /// Answers one byte, then resets.
    AnswerThenReset,
}

/// Reads `REQUEST` bytes of each connection (or to EOF), then does `then`. Counts accepts.
fn failing_backend(then: Then) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || serve_failing(s, then));
        }
    });
    (a, accepted)
}

fn serve_failing(mut s: TcpStream, then: Then) {
    let _ = s.set_read_timeout(Some(DEADLINE));
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < REQUEST {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    match then {
        Then::Reset => reset(s),
        Then::Fin => drop(s),
        Then::Silent => while matches!(s.read(&mut buf), Ok(n) if n > 0) {},
        Then::AnswerThenReset => {
            let _ = s.write_all(b"x");
            // The byte must be on its way before the reset overtakes it.
            let _ = s.flush();
            thread::sleep(Duration::from_millis(50));
            reset(s);
        }
    }
}

fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

fn run(keys: &str, failing: SocketAddr) -> ringlb::engine::Server {
    let good = echo_backend();
    let cfg = pool_config(&format!("balance = \"round_robin\"\n{keys}"), &["", ""]);
    start(&cfg, &[failing, good])
}

/// Sends a request (then FIN if `half_close`) and reads the whole echo back; true if the
/// answer is the request byte for byte.
fn request_echoed(to: SocketAddr, seed: u64, half_close: bool) -> bool {
    let req = pattern(seed, REQUEST);
    let mut s = connect(to);
    s.write_all(&req).expect("request written");
    if half_close {
        s.shutdown(Shutdown::Write).expect("FIN");
        let (h, n) = read_hash(&mut s).expect("answer, then EOF");
        return n == REQUEST as u64 && h == hash(&req);
    }
    let mut back = vec![0u8; REQUEST];
    s.read_exact(&mut back).expect("whole answer");
    back == req
}

fn every_client_served(lb: &ringlb::engine::Server, half_close: bool) {
    let to = addr(lb);
    for seed in 1..=CLIENTS {
        assert!(
            request_echoed(to, seed, half_close),
            "client {seed}: answer differs"
        );
    }
}

/// How a client's read of its answer ended.
enum Answer {
    /// `REQUEST` bytes, or fewer then EOF.
    Whole(Vec<u8>),
    /// A reset, after these bytes.
    Reset(Vec<u8>),
}

/// Reads the answer on `s` until `REQUEST` bytes, EOF or a reset; panics on any other error.
fn read_answer(s: &mut TcpStream, seed: u64) -> Answer {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Answer::Whole(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= REQUEST {
                    return Answer::Whole(got);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Answer::Reset(got),
            Err(e) => panic!("client {seed}: {e}"),
        }
    }
}

#[test]
fn a_request_the_backend_resets_before_answering_is_replayed_to_another_backend() {
    let (bad, accepted) = failing_backend(Then::Reset);
    let lb = run("", bad);
    every_client_served(&lb, false);
    let hit = accepted.load(Ordering::SeqCst) as u64;
    assert!(hit >= 1, "the resetting backend got no stream");
    assert_eq!(lb.stats().replays, hit, "one replay per stream it reset");
}

#[test]
fn a_half_closed_request_the_backend_closes_without_answering_is_replayed_with_its_fin() {
    let (bad, accepted) = failing_backend(Then::Fin);
    let lb = run("", bad);
    every_client_served(&lb, true);
    let hit = accepted.load(Ordering::SeqCst) as u64;
    assert!(hit >= 1, "the closing backend got no stream");
    assert_eq!(lb.stats().replays, hit);
}

#[test]
fn a_backend_silent_past_first_byte_timeout_loses_the_request_to_another() {
    let (bad, accepted) = failing_backend(Then::Silent);
    // passive_failures = 0: the silent backend keeps getting streams, each one timed out.
    let lb = run("first_byte_timeout = \"200ms\"\npassive_failures = 0", bad);
    every_client_served(&lb, false);
    let hit = accepted.load(Ordering::SeqCst) as u64;
    assert!(hit >= 1, "the silent backend got no stream");
    let st = lb.stats();
    assert_eq!(st.first_byte_timeouts, hit);
    assert_eq!(st.replays, hit);
}

#[test]
fn first_byte_timeout_without_a_replay_resets_the_client() {
    let (bad, accepted) = failing_backend(Then::Silent);
    let lb = run(
        "first_byte_timeout = \"200ms\"\npassive_failures = 0\nreplay_buffer = 0",
        bad,
    );
    let to = addr(&lb);
    let mut resets = 0;
    for seed in 1..=CLIENTS {
        let req = pattern(seed, REQUEST);
        let mut s = connect(to);
        s.write_all(&req).unwrap();
        match read_answer(&mut s, seed) {
            Answer::Whole(got) => assert!(got == req, "client {seed}: a cut or wrong echo"),
            Answer::Reset(got) => {
                assert!(got.is_empty(), "client {seed}: bytes before the reset");
                resets += 1;
            }
        }
    }
    let hit = accepted.load(Ordering::SeqCst);
    assert!(hit >= 1);
    assert_eq!(resets, hit, "every stream on the silent backend reset");
    assert_eq!(lb.stats().replays, 0);
}

#[test]
fn a_request_larger_than_replay_buffer_is_not_replayed_and_the_client_sees_a_reset() {
    let (bad, accepted) = failing_backend(Then::Reset);
    let lb = run("replay_buffer = 1024", bad);
    let to = addr(&lb);
    let mut resets = 0;
    for seed in 1..=CLIENTS {
        let req = pattern(seed, REQUEST);
        let mut s = connect(to);
        s.write_all(&req).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        match read_answer(&mut s, seed) {
            Answer::Whole(got) => assert!(hash(&got) == hash(&req), "client {seed}: cut answer"),
            Answer::Reset(got) => {
                assert!(got.is_empty(), "client {seed}: bytes before the reset");
                resets += 1;
            }
        }
    }
    assert_eq!(resets, accepted.load(Ordering::SeqCst));
    assert!(resets >= 1);
    assert_eq!(lb.stats().replays, 0);
}

#[test]
fn a_backend_that_answered_is_never_replayed() {
    let (bad, accepted) = failing_backend(Then::AnswerThenReset);
    let lb = run("", bad);
    let to = addr(&lb);
    let mut answered_then_reset = 0;
    for seed in 1..=CLIENTS {
        let req = pattern(seed, REQUEST);
        let mut s = connect(to);
        s.write_all(&req).unwrap();
        let (reset, got) = match read_answer(&mut s, seed) {
            Answer::Reset(got) => (true, got),
            Answer::Whole(got) => (false, got),
        };
        if reset {
            assert_eq!(
                got, b"x",
                "client {seed}: the failed backend's byte, then the reset"
            );
            answered_then_reset += 1;
        } else {
            assert_eq!(
                got, req,
                "client {seed}: an echo, not mixed with another answer"
            );
        }
    }
    assert_eq!(answered_then_reset, accepted.load(Ordering::SeqCst));
    assert_eq!(lb.stats().replays, 0);
}
