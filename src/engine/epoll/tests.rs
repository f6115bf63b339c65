//! The epoll driver against real sockets on 127.0.0.1: the completions it posts are the ones
//! the relay expects of io_uring (multishot with `more`, buffers, EOF, cancel, ENOBUFS).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::Ring;
use crate::engine::driver::Completion;

/// Runs loop turns until `n` completions arrived (or panics after 5 s).
fn collect(ring: &mut Ring, n: usize) -> Vec<Completion> {
    let end = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < end, "only {out:?}");
        ring.submit_and_wait(Duration::from_millis(50), &mut out)
            .unwrap();
    }
    out
}

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn multishot_recv_posts_each_read_then_eof_and_holds_no_buffer_while_idle() {
    let mut ring = Ring::new(16, 4096).unwrap();
    let (mut peer, ours) = pair();
    ring.recv_multi(ours.as_raw_fd(), 7);
    let mut none = Vec::new();
    ring.submit_and_wait(Duration::ZERO, &mut none).unwrap();
    assert!(none.is_empty(), "nothing to read yet: {none:?}");
    assert_eq!(
        ring.bufs().available(),
        16,
        "an idle socket holds no buffer"
    );
    peer.write_all(b"hello").unwrap();
    let c = collect(&mut ring, 1)[0];
    assert_eq!((c.user_data, c.result, c.more()), (7, 5, true));
    let bid = c.buffer().expect("a buffer");
    ring.bufs_mut().taken(bid);
    let mut text = Vec::new();
    assert!(crate::engine::uring::copy_from_buffer(
        ring.bufs(),
        bid,
        0,
        5,
        &mut text
    ));
    assert_eq!(text, b"hello");
    ring.bufs_mut().recycle(bid);
    drop(peer);
    let eof = collect(&mut ring, 1)[0];
    assert_eq!((eof.result, eof.more(), eof.buffer()), (0, false, None));
}

#[test]
fn cancel_ends_a_pending_op_once_and_an_empty_ring_is_enobufs() {
    let mut ring = Ring::new(16, 4096).unwrap();
    let (mut peer, ours) = pair();
    let fd = ours.as_raw_fd();
    ring.recv_multi(fd, 1);
    ring.cancel(1, 2);
    ring.cancel(1, 3);
    let got = collect(&mut ring, 3);
    let by = |ud| got.iter().find(|c| c.user_data == ud).copied().unwrap();
    assert_eq!((by(1).result, by(1).more()), (-libc::ECANCELED, false));
    assert_eq!((by(2).result, by(3).result), (0, -libc::ENOENT));
    // Every buffer out: a recv with bytes waiting says ENOBUFS and takes nothing.
    while let Some(bid) = ring.bufs().next_free() {
        ring.bufs_mut().consume();
        ring.bufs_mut().taken(bid);
    }
    peer.write_all(b"x").unwrap();
    ring.recv_one(fd, 4);
    let c = collect(&mut ring, 1)[0];
    assert_eq!((c.user_data, c.result), (4, -libc::ENOBUFS));
}

#[test]
fn accept_connect_send_and_wake_complete_like_io_uring() {
    let mut ring = Ring::new(16, 4096).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    ring.accept_multi(l.as_raw_fd(), 10);
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM.nonblocking(),
        None,
    )
    .unwrap();
    ring.connect(s.as_raw_fd(), l.local_addr().unwrap(), 11);
    let got = collect(&mut ring, 2);
    let accepted = got.iter().find(|c| c.user_data == 10).copied().unwrap();
    assert!(accepted.result >= 0 && accepted.more(), "{accepted:?}");
    let client = crate::engine::uring::adopt_fd(accepted.result);
    assert_eq!(got.iter().find(|c| c.user_data == 11).unwrap().result, 0);
    ring.cancel_fd(l.as_raw_fd(), 12);
    let ended = collect(&mut ring, 2);
    assert!(ended
        .iter()
        .any(|c| c.user_data == 10 && c.result == -libc::ECANCELED && !c.more()));
    // A send of a taken spill block goes out; a wake completes the armed eventfd read.
    let id = ring.spill_mut().take().unwrap();
    assert!(crate::engine::uring::copy_into_spill(
        ring.spill(),
        b"spilled",
        id,
        0
    ));
    assert!(ring.send_spill(client.as_raw_fd(), id, 0, 7, 13));
    ring.arm_waker(14);
    ring.waker().wake();
    let got = collect(&mut ring, 2);
    assert!(
        got.iter().any(|c| c.user_data == 13 && c.result == 7),
        "{got:?}"
    );
    assert!(
        got.iter().any(|c| c.user_data == 14 && c.result == 8),
        "{got:?}"
    );
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s2 = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM.nonblocking(),
        None,
    )
    .unwrap();
    ring.connect(s2.as_raw_fd(), refused, 15);
    assert_eq!(collect(&mut ring, 1)[0].result, -libc::ECONNREFUSED);
}
