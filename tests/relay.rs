//! Byte integrity and stream semantics through the real balancer on loopback: large transfers
//! both ways at once, many concurrent connections, half-close in each direction, and resets.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use common::*;

const ONE_BACKEND: &str = r#"
[runtime]
workers = 2
[[listener]]
name = "test"
bind = "127.0.0.1:0"
pool = "p"
[[pool]]
name = "p"
[[pool.backend]]
addr = "{B0}"
"#;

/// A backend that, per connection, sends `len` bytes of pattern(seed) while hashing all it
/// receives until EOF, then reports (hash, length) of what it received.
fn duplex_backend(len: usize, seed: u64) -> (SocketAddr, mpsc::Receiver<(blake3::Hash, u64)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let tx = tx.clone();
            let mut w = s.try_clone().unwrap();
            thread::spawn(move || {
                let data = pattern(seed, len);
                w.write_all(&data).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
            thread::spawn(move || tx.send(read_hash(&mut s).unwrap()).unwrap());
        }
    });
    (a, rx)
}

#[test]
fn sixty_four_mib_each_way_concurrently() {
    const LEN: usize = 64 << 20;
    let (backend, received) = duplex_backend(LEN, 7);
    let server = start(ONE_BACKEND, &[backend]);
    let mut s = connect(addr(&server));
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.write_all(&pattern(11, LEN)).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let (got, n) = read_hash(&mut s).unwrap();
    writer.join().unwrap();
    assert_eq!(n, LEN as u64);
    assert_eq!(
        got,
        hash(&pattern(7, LEN)),
        "backend -> client bytes differ"
    );
    let (back, m) = received.recv().unwrap();
    assert_eq!(m, LEN as u64);
    assert_eq!(
        back,
        hash(&pattern(11, LEN)),
        "client -> backend bytes differ"
    );
    drop(s);
    wait_for("connection released", || active(&server) == vec![0]);
}

#[test]
fn two_hundred_concurrent_connections_of_random_sizes() {
    let server = start(ONE_BACKEND, &[echo_backend()]);
    let to = addr(&server);
    let mut seed = 0x9e3779b97f4a7c15u64;
    let handles: Vec<_> = (0..200)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % (4 << 20)) as usize;
            thread::spawn(move || {
                let data = pattern(i as u64 + 1, len);
                let mut s = connect(to);
                let mut w = s.try_clone().unwrap();
                let expect = hash(&data);
                let writer = thread::spawn(move || {
                    w.write_all(&data).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let (got, n) = read_hash(&mut s).unwrap();
                writer.join().unwrap();
                assert_eq!((got, n), (expect, len as u64), "connection {i} corrupted");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    wait_for("all released", || active(&server) == vec![0]);
    assert_eq!(server.stats().resets, 0);
}

#[test]
fn client_half_close_still_gets_the_response() {
    // The backend reads the whole request (to EOF), then answers and closes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(format!("got {} bytes", req.len()).as_bytes())
            .unwrap();
    });
    let server = start(ONE_BACKEND, &[backend]);
    let mut s = connect(addr(&server));
    s.write_all(&[b'x'; 1000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert_eq!(resp, "got 1000 bytes");
}

#[test]
fn backend_half_close_lets_the_client_keep_sending() {
    // The backend says hello and shuts down its write side, then reads the client to EOF.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        tx.send(rest).unwrap();
    });
    let server = start(ONE_BACKEND, &[backend]);
    let mut s = connect(addr(&server));
    let mut hello = Vec::new();
    s.read_to_end(&mut hello).unwrap();
    assert_eq!(hello, b"hello", "FIN from the backend reached the client");
    let body = pattern(3, 300_000);
    s.write_all(&body).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv().unwrap(), body);
    wait_for("released", || active(&server) == vec![0]);
}

fn reset(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
}

#[test]
fn client_reset_reaches_the_backend() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"ready").unwrap();
        let mut buf = [0u8; 16];
        tx.send(s.read(&mut buf).map_err(|e| e.kind())).unwrap();
    });
    let server = start(ONE_BACKEND, &[backend]);
    let mut s = connect(addr(&server));
    let mut ready = [0u8; 5];
    s.read_exact(&mut ready).unwrap();
    reset(&s);
    drop(s);
    assert_eq!(rx.recv().unwrap(), Err(ErrorKind::ConnectionReset));
    wait_for("released", || active(&server) == vec![0]);
    assert!(server.stats().resets >= 1);
}

#[test]
fn backend_reset_reaches_the_client() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"ready").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
        reset(&s);
    });
    let server = start(ONE_BACKEND, &[backend]);
    let mut s = connect(addr(&server));
    let mut ready = [0u8; 5];
    s.read_exact(&mut ready).unwrap();
    s.write_all(b"!").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read(&mut buf).map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset)
    );
}

#[test]
fn a_client_that_does_not_read_holds_only_a_bounded_amount_in_ringlb() {
    const LEN: usize = 32 << 20;
    // max_unsent 64 KiB with 16 KiB buffers: at most a handful of buffers per direction.
    let config = ONE_BACKEND.replace(
        "workers = 2",
        "workers = 1\nbuffer_size = 16384\nmax_unsent = 65536",
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&pattern(5, LEN)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let server = start(&config, &[backend]);
    let mut s = connect(addr(&server));
    // Let the kernel buffers on both sides fill while the client reads nothing.
    wait_for("relay started", || server.stats().bytes >= 1 << 20);
    let mut peak = 0;
    for _ in 0..100 {
        peak = peak.max(server.stats().buffers_in_use);
        thread::sleep(std::time::Duration::from_millis(2));
    }
    // 64 KiB unsent = 4 buffers, plus the one the last single recv filled. (A multishot recv
    // alone would hold a whole socket buffer's worth: ~90 buffers here.)
    assert!(
        peak <= 8,
        "ringlb held {peak} buffers for one stalled client"
    );
    let (got, n) = read_hash(&mut s).unwrap();
    assert_eq!((got, n), (hash(&pattern(5, LEN)), LEN as u64));
}
