//! `count = "generating"`: streams whose backend has been silent for `idle_after` (a realtime
//! session between turns) weigh `idle_weight` in `least_connections`, counted from the recvs
//! the relay does anyway and the stream's own deadline, and they count whole again the moment
//! the backend speaks. Real sockets through the engine; every wait has a deadline.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Per backend of pool 0: (active, idle).
fn counts(server: &ringlb::engine::Server) -> Vec<(u32, u32)> {
    server.table().load().snapshot(ringlb::clock::now_ms())[0]
        .backends
        .iter()
        .map(|b| (b.active, b.idle))
        .collect()
}

/// Opens a stream and returns it with the id its backend sent first.
fn open(addr: std::net::SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(addr);
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

/// Two id-echo backends (ids 0 and 1), two sessions on each; then the sessions on backend 0
/// go silent while those on backend 1 keep talking.
fn two_quiet_two_busy(count: &str) -> (ringlb::engine::Server, Vec<(TcpStream, u8)>) {
    let backends = [id_echo(0), id_echo(1)];
    let keys = format!(
        "balance = \"least_connections\"\ncount = \"{count}\"\nidle_after = \"300ms\"\nidle_weight = 0.1"
    );
    let server = start(&pool_config(&keys, &["", ""]), &backends);
    let a = addr(&server);
    let mut sessions = Vec::new();
    while sessions.len() < 4 {
        sessions.push(open(a));
    }
    let on = |id: u8| sessions.iter().filter(|(_, b)| *b == id).count();
    assert_eq!((on(0), on(1)), (2, 2), "least connections spreads 2 and 2");
    (server, sessions)
}

/// Keeps backend 1's sessions busy (one echoed byte each) until `done` holds.
fn talk_until(
    sessions: &mut [(TcpStream, u8)],
    id: u8,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        for (s, _) in sessions.iter_mut().filter(|(_, b)| *b == id) {
            round_trip(s, b"x");
        }
        std::thread::sleep(Duration::from_millis(50)); // pacing the talk, not a wait
    }
}

#[test]
fn silent_sessions_count_as_a_fraction_and_new_streams_go_to_them() {
    let (server, mut sessions) = two_quiet_two_busy("generating");
    talk_until(
        &mut sessions,
        1,
        "backend 0's sessions counted idle",
        || counts(&server) == vec![(2, 2), (2, 0)],
    );
    // Backend 0 weighs 0.2, backend 1 weighs 2: the next two streams both go to 0 (1.2, then
    // 2.2 against 2 sends the third to 1).
    let (first, id1) = open(addr(&server));
    let (second, id2) = open(addr(&server));
    assert_eq!(
        (id1, id2),
        (0, 0),
        "both new streams to the backend whose sessions are idle"
    );
    drop((first, second));
}

#[test]
fn a_session_counts_whole_again_when_its_backend_speaks() {
    let (server, mut sessions) = two_quiet_two_busy("generating");
    talk_until(
        &mut sessions,
        1,
        "backend 0's sessions counted idle",
        || counts(&server) == vec![(2, 2), (2, 0)],
    );
    // One of backend 0's sessions takes a turn: the echo is the backend speaking.
    let (s, _) = sessions.iter_mut().find(|(_, id)| *id == 0).unwrap();
    round_trip(s, b"turn");
    wait_for("the talking session counted busy", || {
        counts(&server)[0] == (2, 1)
    });
    // And idle again after idle_after, found by its deadline without another byte.
    talk_until(&mut sessions, 1, "idle again", || {
        counts(&server)[0] == (2, 2)
    });
    // Closing idle sessions gives both counts back.
    sessions.retain(|(_, id)| *id != 0);
    wait_for("closed sessions released", || counts(&server)[0] == (0, 0));
}

#[test]
fn under_streams_silent_sessions_still_count_whole() {
    let (server, mut sessions) = two_quiet_two_busy("streams");
    // Nothing is counted idle without `count = "generating"`. Proving an absence takes time:
    // twice idle_after of silence on backend 0, with backend 1 talking.
    let quiet_until = std::time::Instant::now() + Duration::from_millis(600);
    talk_until(&mut sessions, 1, "twice idle_after", || {
        std::time::Instant::now() >= quiet_until
    });
    assert_eq!(counts(&server), vec![(2, 0), (2, 0)]);
    // ...so the next two streams split over a 2:2 tie.
    let (_a, id1) = open(addr(&server));
    let (_b, id2) = open(addr(&server));
    assert_ne!(id1, id2);
}
