//! The access log and the per-backend counters behind `ringlb_backend_streams_total`: one line
//! per connection at its end with client, listener, pool, backend, duration, bytes each way and
//! the close reason; the same reasons counted on the backend.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use common::process::{field, Proc};
use common::*;
use ringlb::balance::CloseReason;

/// Reads a few bytes, then resets the connection.
fn resetting_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 4];
            let _ = s.read_exact(&mut buf);
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
    });
    a
}

fn config(echo: SocketAddr, resetting: SocketAddr, refusing: SocketAddr) -> String {
    format!(
        "[runtime]\nworkers = 1\n\
         [[listener]]\nname = \"echo\"\nbind = \"127.0.0.1:0\"\npool = \"e\"\n\
         [[listener]]\nname = \"reset\"\nbind = \"127.0.0.1:0\"\npool = \"r\"\n\
         [[listener]]\nname = \"dead\"\nbind = \"127.0.0.1:0\"\npool = \"d\"\n\
         [[pool]]\nname = \"e\"\n[[pool.backend]]\naddr = \"{echo}\"\n\
         [[pool]]\nname = \"r\"\n[[pool.backend]]\naddr = \"{resetting}\"\n\
         [[pool]]\nname = \"d\"\nretries = 0\n[[pool.backend]]\naddr = \"{refusing}\"\n"
    )
}

#[test]
fn every_connection_logs_one_line_with_its_close_reason_and_bytes() {
    let (_hold, refusing) = refusing_backend();
    let p = Proc::run(
        "access",
        &config(echo_backend(), resetting_backend(), refusing),
        &[],
    );
    // A finished echo stream: the client sends FIN first.
    let mut s = connect(p.listener("echo"));
    s.write_all(b"hello").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"hello");
    let line = p.wait_line(&["ringlb::access", "listener=echo"]);
    let client = s.local_addr().unwrap().to_string();
    assert_eq!(field(&line, "reason"), "client_fin", "{line}");
    assert_eq!(field(&line, "client"), client, "{line}");
    assert_eq!(field(&line, "pool"), "e");
    assert_eq!(
        (field(&line, "bytes_up"), field(&line, "bytes_down")),
        ("5".into(), "5".into())
    );
    assert!(field(&line, "conn").starts_with("0-"), "{line}");

    // The backend resets after 4 bytes: the client sees the reset, the log says why.
    let mut s = connect(p.listener("reset"));
    s.write_all(b"abcd").unwrap();
    assert!(ends_with_reset(&mut s));
    let line = p.wait_line(&["ringlb::access", "listener=reset"]);
    assert_eq!(field(&line, "reason"), "backend_reset", "{line}");
    assert_eq!(field(&line, "bytes_up"), "4");

    // Nothing to connect to.
    let mut s = connect(p.listener("dead"));
    let mut buf = [0u8; 1];
    let _ = s.read(&mut buf);
    let line = p.wait_line(&["ringlb::access", "listener=dead"]);
    assert_eq!(field(&line, "reason"), "connect_failed", "{line}");
    assert_eq!(field(&line, "backend"), "-");
    assert_eq!(p.lines_with(&["ringlb::access"]).len(), 3, "one line each");
}

#[test]
fn backends_count_streams_by_close_reason_and_bytes_each_way() {
    let cfg = pool_config("", &[""]);
    let server = start(&cfg, &[echo_backend()]);
    for i in 0..3u8 {
        let mut s = connect(addr(&server));
        s.write_all(&[i; 100]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let (_, n) = read_hash(&mut s).unwrap();
        assert_eq!(n, 100);
    }
    let counters = || {
        server.table().load().snapshot(ringlb::clock::now_ms())[0].backends[0]
            .counters
            .clone()
    };
    wait_for("three streams counted", || {
        counters()
            .streams
            .iter()
            .any(|&(r, n)| r == CloseReason::ClientFin && n == 3)
    });
    let c = counters();
    assert_eq!((c.bytes_to_backend, c.bytes_from_backend), (300, 300));
    assert_eq!(c.streams.iter().map(|(_, n)| n).sum::<u64>(), 3);
    assert_eq!(c.connect_time.count(), 3);
}
