//! Memory follows use: with the default buffer settings a started worker is small (its receive
//! buffers are mapped, not touched), bulk traffic costs little, stalled streams make it grow by
//! what they hold, and once they are gone it shrinks back. Own test binary: it reads the whole
//! process's RSS.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use common::*;

const MIB: u64 = 1 << 20;

fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Default runtime settings (128 KiB x 512 receive buffers), one worker.
const CFG: &str = "[runtime]\nworkers = 1\n\
                   [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
                   [[listener]]\nname = \"source\"\nbind = \"127.0.0.1:0\"\npool = \"s\"\n\
                   [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{B0}\"\n\
                   [[pool]]\nname = \"s\"\n[[pool.backend]]\naddr = \"{B1}\"\n";

/// Per connection: 8 MiB (one shared 1 MiB pattern, eight times), then FIN.
fn source_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let data = Arc::new(pattern(5, 1 << 20));
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let data = data.clone();
            thread::spawn(move || {
                for _ in 0..8 {
                    if s.write_all(&data).is_err() {
                        return;
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    a
}

#[test]
fn a_worker_is_small_at_idle_grows_with_stalled_streams_and_shrinks_back() {
    let backends = [echo_backend(), source_backend()];
    let before = rss();
    let server = start(CFG, &backends);
    let started = rss();
    assert!(
        started < before + 16 * MIB,
        "an idle worker costs {} MiB",
        (started - before) / MIB
    );
    // 256 MiB echoed, generated and checked in 64 KiB pieces (the test itself stays small).
    const LEN: usize = 256 << 20;
    let mut s = connect(addr(&server));
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let piece = pattern(21, 64 * 1024);
        for _ in 0..LEN / piece.len() {
            w.write_all(&piece).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let piece = pattern(21, 64 * 1024);
    let mut got = vec![0u8; piece.len()];
    for _ in 0..LEN / piece.len() {
        s.read_exact(&mut got).unwrap();
        assert!(got == piece, "echoed bytes differ");
    }
    writer.join().unwrap();
    let bulk = rss();
    drop(s);
    assert!(
        bulk < started + 16 * MIB,
        "one bulk stream costs {} MiB",
        (bulk - started) / MIB
    );
    // 64 clients that read nothing: each holds max_unsent (256 KiB) in spill blocks.
    const STALLED: u64 = 64;
    let source = server.listener_addr("source").unwrap();
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&source.into()).unwrap();
            s.into()
        })
        .collect();
    wait_for("every stalled stream holds max_unsent", || {
        server.stats().spill_blocks >= STALLED * 4
    });
    let stalled_rss = rss();
    assert!(
        stalled_rss > started + 16 * MIB,
        "64 stalled streams holding 256 KiB each should be resident: {} MiB",
        (stalled_rss - started) / MIB
    );
    for s in &stalled {
        socket2::SockRef::from(s)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
    }
    drop(stalled);
    wait_for("streams released", || server.stats().connections == 0);
    // Trimmed every 2 s: spill blocks and receive buffers no longer needed are given back.
    wait_for("memory back near the idle level", || {
        rss() < started + 16 * MIB
    });
    eprintln!(
        "rss: before {} MiB, started {} MiB, after bulk {} MiB, 64 stalled {} MiB, after {} MiB",
        before / MIB,
        started / MIB,
        bulk / MIB,
        stalled_rss / MIB,
        rss() / MIB
    );
}
