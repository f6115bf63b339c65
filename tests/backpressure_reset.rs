//! A reset from a peer ringlb is not reading (it holds off because the other side has
//! `max_unsent` queued) must still be passed on at once: the soak found resets that never
//! reached the other side while that side was slow. Without a watch on the socket, ringlb sees
//! the RST only when it reads again, which a stalled backend may never let happen.

mod common;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

/// Accepts one connection and never reads it; hands it to the test.
fn silent_backend() -> (SocketAddr, mpsc::Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            let _ = tx.send(s);
        }
    });
    (a, rx)
}

#[test]
fn a_client_reset_while_ringlb_holds_off_reading_it_reaches_the_backend() {
    let (backend, accepted) = silent_backend();
    let server = start(&pool_config("", &[""]), &[backend]);
    let mut client = connect(addr(&server));
    let b = accepted.recv_timeout(DEADLINE).expect("backend accepted");
    // Fill everything: the backend's buffers, ringlb's queue up to max_unsent, the client's.
    client.set_nonblocking(true).unwrap();
    let chunk = pattern(1, 64 * 1024);
    // 256 KiB (max_unsent) queued in 64 KiB spill blocks: ringlb no longer reads the client.
    wait_for("ringlb holds max_unsent for the backend", || {
        loop {
            match client.write(&chunk) {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        server.stats().spill_blocks >= 4
    });
    // The client resets. The backend reads nothing, yet must learn the stream is cut.
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let sock = socket2::SockRef::from(&b);
    wait_for(
        "the backend socket reset",
        || matches!(sock.take_error(), Ok(Some(e)) if e.kind() == ErrorKind::ConnectionReset),
    );
    wait_for("the connection freed", || server.stats().connections == 0);
    assert_eq!(server.stats().spill_blocks, 0, "its queued bytes released");
}
