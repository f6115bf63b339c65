//! Peers that stop reading: a worker must keep serving everyone else, whatever the size of the
//! messages the stalled streams carry, holding only bounded spill memory per stalled stream and
//! no shared receive buffer; and a stream cut while bytes are still queued must end in a reset,
//! never in a FIN that makes a truncated answer look complete. Timeouts run on a manual clock.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;
use ringlb::engine::{Clock, SPILL_BLOCK};

const EVENT: usize = 100;

/// Two listeners on one worker with a tiny buffer ring: `events` to a backend that streams
/// 100-byte events (pool keys `pool_keys`), `test` to an echo backend that never times out.
fn config(pool_keys: &str) -> String {
    format!(
        "[runtime]\nworkers = 1\nbuffer_size = 16384\nbuffer_count = 16\nmax_unsent = 65536\n\
         [[listener]]\nname = \"events\"\nbind = \"127.0.0.1:0\"\npool = \"ev\"\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"echo\"\n\
         [[pool]]\nname = \"ev\"\n{pool_keys}\n[[pool.backend]]\naddr = \"{{B0}}\"\n\
         [[pool]]\nname = \"echo\"\nidle_timeout = \"8000h\"\n[[pool.backend]]\naddr = \"{{B1}}\"\n"
    )
}

/// Bytes sent in bulk before the events: on loopback the kernel's send buffer of ringlb's
/// client socket takes ~2.6 MB before a send to a client that reads nothing blocks, so most of
/// that is filled fast and the block comes during the small events.
const BULK: usize = 2 << 20;

/// Per connection: BULK bytes, then `events` events of 100 bytes (a token stream, a few every
/// ~100 us), all of pattern(seed); then FIN; then reads until the client side closes.
fn event_backend(events: usize, seed: u64) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                s.set_nodelay(true).unwrap();
                let data = pattern(seed, BULK + events * EVENT);
                if s.write_all(&data[..BULK]).is_err() {
                    return;
                }
                for (i, e) in data[BULK..].chunks(EVENT).enumerate() {
                    if s.write_all(e).is_err() {
                        return;
                    }
                    if i % 4 == 3 {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
                let mut sink = [0u8; 256];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    a
}

/// A client that reads nothing: a small receive buffer so that ringlb's send to it blocks soon.
fn stalled_client(to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Waits until the stalled streams have stopped moving with bytes queued in ringlb: the kernel
/// buffers towards each client are full and ringlb holds `max_unsent`, so it reads no more. Only
/// the probe's own round trip (16 bytes counted) may move in a 50 ms window.
fn wait_until_stalled(server: &ringlb::engine::Server, probe: &mut TcpStream) {
    wait_for("the stalled stream stops moving with bytes queued", || {
        let before = server.stats().bytes;
        round_trip(probe, b"quiet?..");
        thread::sleep(Duration::from_millis(50));
        let stats = server.stats();
        stats.bytes - before == 16 && stats.spill_blocks >= 1
    });
}

#[test]
fn stalled_readers_of_small_events_never_starve_the_worker() {
    const STALLED: usize = 24;
    const EVENTS: usize = 40_000;
    let server = start(&config(""), &[event_backend(EVENTS, 9), echo_backend()]);
    let events = server.listener_addr("events").unwrap();
    let mut stalled: Vec<TcpStream> = (0..STALLED).map(|_| stalled_client(events)).collect();
    let mut probe = connect(addr(&server));
    wait_until_stalled(&server, &mut probe);
    for i in 0..20u32 {
        round_trip(&mut probe, format!("ping {i}").as_bytes());
    }
    let stats = server.stats();
    // max_unsent (64 KiB) plus one receive buffer (16 KiB), in 64 KiB blocks, per stream.
    let per_stream = (65_536 + 16_384) / u64::from(SPILL_BLOCK) + 2;
    assert!(
        stats.spill_blocks >= STALLED as u64 && stats.spill_blocks <= per_stream * STALLED as u64,
        "{} spill blocks for {STALLED} stalled streams",
        stats.spill_blocks
    );
    // 16 shared buffers could never have held 24 stalled streams' bytes: they hold none.
    wait_for("stalled streams hold no receive buffer", || {
        server.stats().buffers_in_use == 0
    });
    // Once they read again, every byte arrives, in order.
    let total = BULK + EVENTS * EVENT;
    let want = hash(&pattern(9, total));
    let readers: Vec<_> = stalled
        .drain(..)
        .map(|mut s| thread::spawn(move || read_hash(&mut s).unwrap()))
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), (want, total as u64));
    }
    wait_for("all released", || server.stats().connections == 1);
    assert_eq!(server.stats().resets, 0);
    assert_eq!(
        server.stats().stuck_revived,
        0,
        "no stream was found with an operation due and not submitted"
    );
}

#[test]
fn a_stream_cut_with_bytes_queued_ends_in_a_reset_not_a_fin() {
    let clock = Clock::manual();
    let cfg = config("idle_timeout = \"1h\"");
    let server = start_with(
        &cfg,
        &[event_backend(50_000, 3), echo_backend()],
        clock.clone(),
    );
    let mut stalled = stalled_client(server.listener_addr("events").unwrap());
    let mut probe = connect(addr(&server));
    wait_until_stalled(&server, &mut probe);
    // Twice: a read in flight at the first advance may still land after it.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(2 * 3600));
        // The round trip proves the worker has seen the clock move.
        round_trip(&mut probe, b"two hours later");
    }
    let reset = ends_with_reset(&mut stalled);
    assert!(
        reset,
        "a cut stream must not end in a clean FIN: {:?}",
        server.stats()
    );
    let stats = server.stats();
    assert_eq!((stats.idle_timeouts, stats.truncated), (1, 1));
    round_trip(&mut probe, b"still served");
}

#[test]
fn max_connection_age_resets_a_stream_it_cuts_with_bytes_queued() {
    let clock = Clock::manual();
    let cfg = config("max_connection_age = \"10m\"");
    let server = start_with(
        &cfg,
        &[event_backend(50_000, 4), echo_backend()],
        clock.clone(),
    );
    let mut stalled = stalled_client(server.listener_addr("events").unwrap());
    let mut probe = connect(addr(&server));
    wait_until_stalled(&server, &mut probe);
    // Past the age (10 min) and its hard limit (+1 min), before the idle timeout (1 h).
    clock.advance(Duration::from_secs(1800));
    round_trip(&mut probe, b"half an hour later");
    assert!(ends_with_reset(&mut stalled));
    assert_eq!(server.stats().age_closes, 1);
    assert_eq!(server.stats().truncated, 1);
}
