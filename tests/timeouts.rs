//! Idle and half-close timeouts on a manual clock: hours of silence in milliseconds, and no
//! dependence on how loaded the machine is. A round trip on an echo stream of the same worker
//! is the barrier that proves the worker has seen the clock move.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use common::*;
use ringlb::engine::Clock;

/// One worker; listener `test` to pool `p` (keys `pool_keys`, backend `{B0}`), listener `probe`
/// to an echo pool that never times out (backend `{B1}`).
fn config(pool_keys: &str) -> String {
    format!(
        "[runtime]\nworkers = 1\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
         [[listener]]\nname = \"probe\"\nbind = \"127.0.0.1:0\"\npool = \"echo\"\n\
         [[pool]]\nname = \"p\"\n{pool_keys}\n[[pool.backend]]\naddr = \"{{B0}}\"\n\
         [[pool]]\nname = \"echo\"\nidle_timeout = \"8000h\"\n[[pool.backend]]\naddr = \"{{B1}}\"\n"
    )
}

/// Reads each connection to EOF, answers "bye", and never closes its socket.
fn lingering_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut req = Vec::new();
                let _ = s.read_to_end(&mut req);
                let _ = s.write_all(b"bye");
                // Keep the socket open (and so the stream half closed) for good.
                loop {
                    thread::park();
                }
            });
        }
    });
    a
}

#[test]
fn a_half_closed_stream_is_closed_after_half_close_timeout() {
    let clock = Clock::manual();
    let cfg = config("idle_timeout = \"1h\"\nhalf_close_timeout = \"60s\"");
    let server = start_with(&cfg, &[lingering_backend(), echo_backend()], clock.clone());
    let mut probe = connect(server.listener_addr("probe").unwrap());
    let mut s = connect(addr(&server));
    s.write_all(b"request").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut bye = [0u8; 3];
    s.read_exact(&mut bye).unwrap();
    // The send of "bye" completes in the worker's next turn: let it, before time moves.
    round_trip(&mut probe, b"0 s");
    clock.advance(Duration::from_secs(30));
    round_trip(&mut probe, b"30 s");
    assert_eq!(server.stats().half_close_timeouts, 0, "not yet");
    clock.advance(Duration::from_secs(31));
    round_trip(&mut probe, b"61 s");
    // The backend never finished its answer: a FIN would make the cut answer look complete.
    assert!(ends_with_reset(&mut s), "a cut stream must end in a reset");
    let stats = server.stats();
    assert_eq!((stats.half_close_timeouts, stats.idle_timeouts), (1, 0));
    wait_for("released", || active(&server)[0] == 0);
}

#[test]
fn idle_timeout_closes_silent_streams_and_keeps_active_ones() {
    let clock = Clock::manual();
    let cfg = config("idle_timeout = \"1h\"");
    let server = start_with(&cfg, &[echo_backend(), echo_backend()], clock.clone());
    let mut silent = connect(addr(&server));
    round_trip(&mut silent, b"once");
    let mut active_stream = connect(addr(&server));
    round_trip(
        &mut active_stream,
        b"the echo to `silent` is done before time moves",
    );
    // Four times 20 minutes: the active stream talks each time, the silent one never.
    for i in 0..4 {
        clock.advance(Duration::from_secs(20 * 60));
        round_trip(
            &mut active_stream,
            format!("at {} min", (i + 1) * 20).as_bytes(),
        );
    }
    assert!(
        ends_with_reset(&mut silent),
        "neither side finished: the idle stream is cut with a reset"
    );
    assert_eq!(server.stats().idle_timeouts, 1);
    round_trip(&mut active_stream, b"still open after 80 min");
}

#[test]
fn a_queued_client_that_hangs_up_leaves_the_queue_and_never_reaches_a_backend() {
    let backend = hold_backend(0);
    let cfg = pool_config(
        "queue_size = 4\nqueue_timeout = \"1h\"",
        &["max_connections = 1"],
    );
    let server = start(&cfg, &[backend.addr]);
    let to = addr(&server);
    let held = open_held(to);
    let waiting = connect(to);
    wait_for("second client queued", || server.queue_len(0) == 1);
    drop(waiting);
    // Without a watch it would wait for its queue_timeout (an hour) and then reach a GPU.
    wait_for("the hung-up client left the queue", || {
        server.queue_len(0) == 0
    });
    assert_eq!(server.stats().queue_abandoned, 1);
    drop(held);
    wait_for("slot free", || active(&server) == vec![0]);
    let (_third, _) = open_held(to);
    assert_eq!(
        backend.accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "only the first and the third client reached the backend"
    );
}

/// The half-close timeout is about bytes moving, not only bytes ringlb reads or writes: a
/// backend still taking an upload that ringlb has handed to its kernel send buffer (its
/// acknowledgements grow) is not idle. (The soak found such uploads cut while a busy backend
/// was still reading them.) Once it stops reading, the timeout applies as before. What ringlb
/// cannot see are reads of bytes already in the backend's own receive buffer.
#[test]
fn a_half_closed_upload_the_backend_still_reads_is_not_cut_until_it_stops() {
    const UPLOAD: usize = 1 << 20;
    // More than loopback's MSS (64 KiB): smaller reads may not open the window at all.
    const STEP: usize = 128 << 10;
    let clock = Clock::manual();
    let cfg = config("idle_timeout = \"1h\"\nhalf_close_timeout = \"60s\"");
    // A small receive buffer keeps most of the upload in ringlb's send buffer, where the
    // backend's reads show as bytes acknowledged.
    let backend = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    backend.set_recv_buffer_size(64 << 10).unwrap();
    backend
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    backend.listen(8).unwrap();
    let backend: TcpListener = backend.into();
    let server = start_with(
        &cfg,
        &[backend.local_addr().unwrap(), echo_backend()],
        clock.clone(),
    );
    let mut probe = connect(server.listener_addr("probe").unwrap());
    let mut s = connect(addr(&server));
    let (mut b, _) = backend.accept().unwrap();
    let upload = pattern(7, UPLOAD);
    let mut writer = s.try_clone().unwrap();
    let sent = upload.clone();
    let w = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = vec![0u8; STEP];
    b.read_exact(&mut got).unwrap();
    let mut received = got.clone();
    w.join().unwrap();
    // Everything is in the kernel's buffers once ringlb holds no byte of it.
    wait_for("ringlb handed the whole upload to the kernel", || {
        let st = server.stats();
        st.spill_blocks == 0 && st.buffers_in_use == 0
    });
    round_trip(&mut probe, b"barrier");
    // Two and a half minutes of a backend reading 128 KiB every 25 s: never 60 s without a byte moving.
    for i in 0..6 {
        clock.advance(Duration::from_secs(25));
        round_trip(&mut probe, format!("{} s", (i + 1) * 25).as_bytes());
        assert_eq!(
            server.stats().half_close_timeouts,
            0,
            "cut after {} s while the backend was reading",
            (i + 1) * 25
        );
        b.read_exact(&mut got).unwrap();
        received.extend_from_slice(&got);
    }
    assert_eq!(hash(&received), hash(&upload[..received.len()]));
    // Now the backend stops reading with bytes still queued: cut within the timeout.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(31));
        round_trip(&mut probe, b"stopped reading");
    }
    assert_eq!(server.stats().half_close_timeouts, 1);
    assert!(ends_with_reset(&mut s), "a cut stream must end in a reset");
}
