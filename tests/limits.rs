//! Connection limits: past `runtime.max_connections` (or a listener's `max_connections`) new
//! clients wait in the listen backlog, not in ringlb, and are served as soon as a stream ends.

mod common;

use std::net::TcpStream;

use common::*;

#[test]
fn past_max_connections_clients_wait_in_the_backlog_until_a_stream_ends() {
    let cfg = pool_config("", &[""]).replace("workers = 2", "workers = 2\nmax_connections = 3");
    let server = start(&cfg, &[echo_backend()]);
    assert_eq!(server.max_connections(), 3);
    let to = addr(&server);
    let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(to)).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        round_trip(s, format!("stream {i}").as_bytes());
    }
    let mut fourth = connect(to);
    std::io::Write::write_all(&mut fourth, b"fourth").unwrap();
    for s in streams.iter_mut() {
        round_trip(s, b"both workers turned");
    }
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.admitted), (3, 3), "{stats:?}");
    drop(streams.remove(0));
    let mut back = [0u8; 6];
    std::io::Read::read_exact(&mut fourth, &mut back).expect("served once a stream ended");
    assert_eq!(&back, b"fourth");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.refused), (4, 0));
}

#[test]
fn a_listener_limit_holds_for_that_listener_only() {
    let cfg = "[runtime]\nworkers = 1\n\
               [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\nmax_connections = 1\n\
               [[listener]]\nname = \"other\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
               [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{B0}\"\n";
    let server = start(cfg, &[echo_backend()]);
    let mut first = connect(addr(&server));
    round_trip(&mut first, b"one");
    let mut waiting = connect(addr(&server));
    std::io::Write::write_all(&mut waiting, b"wait").unwrap();
    let other = server.listener_addr("other").unwrap();
    let mut others: Vec<TcpStream> = (0..3).map(|_| connect(other)).collect();
    for s in others.iter_mut() {
        round_trip(s, b"other listener");
    }
    assert_eq!(server.stats().accepted, 4, "the limited listener took one");
    drop(first);
    let mut back = [0u8; 4];
    std::io::Read::read_exact(&mut waiting, &mut back).unwrap();
    assert_eq!(&back, b"wait");
}
