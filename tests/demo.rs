//! End to end: the demo's fleet (three mock GPU backends of capacity 8/16/24 behind the
//! balancer, weights 1:2:3) in-process; 30 concurrent SSE streams spread in proportion.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringlb::tools::demo::{DemoFleet, DemoOptions};

/// Opens an SSE stream and returns it with the `x-backend` header of its response.
fn open_stream(addr: std::net::SocketAddr) -> (BufReader<TcpStream>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = r#"{"prompt":"hello","max_tokens":100000,"stream":true}"#;
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut backend = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("x-backend:") {
            backend = v.trim().to_string();
        }
    }
    (r, backend)
}

#[test]
fn thirty_streams_follow_capacity() {
    let opts = DemoOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        tokens_per_sec: 20.0,
        ttft: Duration::from_millis(5),
    };
    let fleet = DemoFleet::start(&opts).unwrap();
    let addr = fleet.addr().unwrap();
    let streams: Vec<_> = (0..30).map(|_| open_stream(addr)).collect();
    let names: Vec<String> = fleet
        .backends
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    let per: Vec<usize> = names
        .iter()
        .map(|n| streams.iter().filter(|(_, b)| b == n).count())
        .collect();
    assert_eq!(per, vec![5, 10, 15], "streams per backend {names:?}");
    let lb: Vec<u32> = fleet.rows().iter().map(|r| r.balancer_active).collect();
    assert_eq!(lb, vec![5, 10, 15]);
    drop(streams);
    fleet.shutdown();
}
