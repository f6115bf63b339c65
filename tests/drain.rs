//! Graceful stop of the real binary: SIGTERM stops accepting (taking what already waits in the
//! listen backlog), lets live streams finish up to `runtime.shutdown_timeout`, resets the rest
//! and exits 0; a second signal stops at once; SIGHUP and SIGUSR1 no longer kill it.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use common::process::Proc;
use common::*;
use nix::sys::signal::Signal;

fn config(backend: SocketAddr, runtime: &str, listener: &str) -> String {
    format!(
        "[runtime]\nworkers = 2\n{runtime}\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n{listener}\n\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{backend}\"\n"
    )
}

/// Waits until both workers have closed their listening sockets.
fn wait_closed(p: &Proc) {
    let (first, _) = p.wait_line_from(0, &["stopped accepting"]);
    p.wait_line_from(first + 1, &["stopped accepting"]);
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn sigterm_lets_50_live_streams_finish_exits_0_and_the_port_refuses() {
    let mut p = Proc::run(
        "drain",
        &config(echo_backend(), "shutdown_timeout = \"30s\"", ""),
        &[],
    );
    let to = p.listener("test");
    let mut streams: Vec<(TcpStream, Vec<u8>)> = (0..50u64)
        .map(|i| {
            let mut s = connect(to);
            let data = pattern(i, 64 * 1024 + i as usize);
            round_trip(&mut s, &data[..1000]);
            (s, data)
        })
        .collect();
    p.signal(Signal::SIGTERM);
    p.wait_line(&["draining"]);
    wait_closed(&p);
    assert!(refused(to), "a draining ringlb must refuse new clients");
    // The streams finish over 2 s, each checked byte for byte.
    let finishing: Vec<_> = streams
        .drain(..)
        .enumerate()
        .map(|(i, (mut s, data))| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(40 * i as u64));
                let mut w = s.try_clone().unwrap();
                let rest = data[1000..].to_vec();
                let writer = thread::spawn(move || {
                    w.write_all(&rest).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let (h, n) = read_hash(&mut s).expect("the stream finishes");
                writer.join().unwrap();
                assert_eq!((h, n), (hash(&data[1000..]), (data.len() - 1000) as u64));
            })
        })
        .collect();
    for f in finishing {
        f.join().unwrap();
    }
    let status = p
        .wait_exit(DEADLINE)
        .expect("ringlb exits once the streams are done");
    assert!(status.success(), "{status}");
    assert_eq!(
        p.lines_with(&["ringlb::access", "reason=client_fin"]).len(),
        50
    );
    assert!(p.lines_with(&["reason=shutdown"]).is_empty());
}

#[test]
fn the_shutdown_timeout_resets_the_streams_left_and_a_second_signal_stops_at_once() {
    for (timeout, second) in [("1s", false), ("1h", true)] {
        let runtime = format!("shutdown_timeout = \"{timeout}\"");
        let mut p = Proc::run("drain-timeout", &config(echo_backend(), &runtime, ""), &[]);
        let mut s = connect(p.listener("test"));
        round_trip(&mut s, b"open");
        p.signal(Signal::SIGTERM);
        p.wait_line(&["draining"]);
        if second {
            p.signal(Signal::SIGINT);
            p.wait_line(&["stopping now"]);
        }
        assert!(ends_with_reset(&mut s), "a stream cut at stop is reset");
        let status = p.wait_exit(DEADLINE).expect("ringlb exits");
        assert!(status.success(), "{status}");
        assert_eq!(
            p.lines_with(&["ringlb::access", "reason=shutdown"]).len(),
            1
        );
    }
}

#[test]
fn a_client_waiting_in_the_listen_backlog_is_served_not_reset() {
    let mut p = Proc::run(
        "drain-backlog",
        &config(
            echo_backend(),
            "shutdown_timeout = \"30s\"",
            "max_connections = 1",
        ),
        &[],
    );
    let to = p.listener("test");
    let mut first = connect(to);
    round_trip(&mut first, b"first");
    // The listener is full: the second client's handshake completes in the kernel and it waits
    // in a listen backlog (or parked in a worker) until the first stream ends.
    let mut second = connect(to);
    second.write_all(b"second").unwrap();
    p.signal(Signal::SIGTERM);
    wait_closed(&p);
    first.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    let mut back = [0u8; 6];
    second
        .read_exact(&mut back)
        .expect("the waiting client is served");
    assert_eq!(&back, b"second");
    second.shutdown(Shutdown::Write).unwrap();
    assert!(!ends_with_reset(&mut second), "it ends cleanly");
    let status = p.wait_exit(DEADLINE).expect("ringlb exits");
    assert!(status.success(), "{status}");
}

#[test]
fn sighup_and_sigusr1_are_logged_not_fatal() {
    let p = Proc::run("signals", &config(echo_backend(), "", ""), &[]);
    let mut s = connect(p.listener("test"));
    round_trip(&mut s, b"before");
    p.signal(Signal::SIGUSR1);
    p.wait_line(&["SIGUSR1", "ignored"]);
    p.signal(Signal::SIGHUP);
    p.wait_line(&["SIGHUP"]);
    round_trip(&mut s, b"still relaying");
    let mut again = connect(p.listener("test"));
    round_trip(&mut again, b"and accepting");
}
