//! End-to-end tests of `ringlb-load` against small in-test servers on 127.0.0.1:0: exact
//! request and token counts, error kinds, open-loop pacing and coordinated-omission
//! correction, idle holding, connection reuse, the JSON report and the binary's exit codes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringlb::tools::load::{run, run_blocking, Limit, LoadOptions, Mode, Report, RequestLogEntry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn opts(mode: Mode, addr: SocketAddr, connections: usize, limit: Limit) -> LoadOptions {
    LoadOptions::new(mode, addr.to_string(), connections, limit)
}

/// One parsed request: path, whether it asked to close, body.
struct Req {
    path: String,
    close: bool,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Req> {
    loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf).ok()? {
                httparse::Status::Complete(n) => {
                    let header = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_string())
                    };
                    let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
                    let close =
                        header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    Some((n, len, close, req.path.unwrap().to_string()))
                }
                httparse::Status::Partial => None,
            }
        };
        if let Some((n, len, close, path)) = parsed {
            while buf.len() < n + len {
                let mut tmp = [0u8; 4096];
                let k = stream.read(&mut tmp).await.ok()?;
                if k == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..k]);
            }
            let body = buf[n..n + len].to_vec();
            buf.drain(..n + len);
            return Some(Req { path, close, body });
        }
        let mut tmp = [0u8; 4096];
        let k = stream.read(&mut tmp).await.ok()?;
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..k]);
    }
}

#[derive(Clone, Copy)]
enum SseStyle {
    Chunked,
    CloseDelimited,
    /// Chunked, but the server drops the connection after this many events.
    CutAfter(usize),
}

/// An OpenAI-style streaming server; connection i answers with `x-backend: gpu-{i % 2}`.
async fn sse_server(style: SseStyle) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_sse(stream, style, format!("gpu-{}", n % 2)));
        }
    });
    addr
}

async fn serve_sse(mut stream: TcpStream, style: SseStyle, backend: String) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut stream, &mut buf).await {
        assert_eq!(req.path, "/v1/completions");
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(v["stream"], true);
        assert!(v["prompt"].is_string());
        let tokens = v["max_tokens"].as_u64().unwrap() as usize;
        let chunked = !matches!(style, SseStyle::CloseDelimited);
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-backend: {backend}\r\n"
        );
        out += if chunked {
            "Transfer-Encoding: chunked\r\n\r\n"
        } else {
            "\r\n"
        };
        let frame = |data: String| {
            if chunked {
                format!("{:x}\r\n{data}\r\n", data.len())
            } else {
                data
            }
        };
        for i in 0..tokens {
            if matches!(style, SseStyle::CutAfter(k) if k == i) {
                let _ = stream.write_all(out.as_bytes()).await;
                return;
            }
            out += &frame(format!("data: {{\"choices\":[{{\"text\":\"t{i}\"}}]}}\n\n"));
        }
        out += &frame("data: [DONE]\n\n".to_string());
        if chunked {
            out += "0\r\n\r\n";
        }
        if stream.write_all(out.as_bytes()).await.is_err() || !chunked {
            return;
        }
    }
}

struct HttpServer {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
}

/// /health answers with Content-Length, /chunked with a chunked body, /silent never answers;
/// the request numbered `stall_on` (from 0, over all connections) is answered 200 ms late.
async fn http_server(stall_on: Option<usize>) -> HttpServer {
    let (listener, addr) = listen().await;
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepts);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(req) = read_request(&mut stream, &mut buf).await {
                    if Some(requests.fetch_add(1, Ordering::SeqCst)) == stall_on {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let resp: &[u8] = match req.path.as_str() {
                        "/health" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-backend: web-1\r\n\r\nok",
                        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                        "/silent" => std::future::pending().await,
                        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                    };
                    if stream.write_all(resp).await.is_err() || req.close {
                        return;
                    }
                }
            });
        }
    });
    HttpServer { addr, accepts }
}

/// Echoes bytes back; with `corrupt`, flips the first byte of every third message of each
/// connection (messages of `size` bytes).
async fn echo_server(size: usize, corrupt: bool) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut offset, mut buf) = (0usize, vec![0u8; 8192]);
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    for (i, byte) in buf[..n].iter_mut().enumerate() {
                        let pos = offset + i;
                        if corrupt && pos % size == 0 && (pos / size) % 3 == 2 {
                            *byte ^= 0xff;
                        }
                    }
                    offset += n;
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The handshake callback: checks the path and names the backend.
#[allow(clippy::result_large_err)] // the signature is tungstenite's Callback
fn tag_backend(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    assert_eq!(req.uri().path(), "/v1/stream");
    resp.headers_mut()
        .insert("x-backend", HeaderValue::from_static("ws-a"));
    Ok(resp)
}

/// Streams `max_tokens` text messages then "[DONE]" per prompt; handshake adds x-backend.
async fn ws_server() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, tag_backend).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(text) = msg else { continue };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    for i in 0..v["max_tokens"].as_u64().unwrap() {
                        if ws.send(Message::text(format!("t{i}"))).await.is_err() {
                            return;
                        }
                    }
                    if ws.send(Message::text("[DONE]")).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

struct IdleServer {
    addr: SocketAddr,
    peak: Arc<AtomicUsize>,
}

/// Tracks how many connections are open at once; with `close_odd`, drops every second one.
async fn idle_server(close_odd: bool) -> IdleServer {
    let (listener, addr) = listen().await;
    let peak = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let peak2 = Arc::clone(&peak);
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            if close_odd && n % 2 == 1 {
                continue; // dropped: closed at once
            }
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak2.fetch_max(now, Ordering::SeqCst);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    IdleServer { addr, peak }
}

fn assert_clean(r: &Report) {
    assert_eq!(
        r.errors.total, 0,
        "unexpected errors: {:?}",
        r.error_samples
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_counts_requests_tokens_and_backends_exactly() {
    let addr = sse_server(SseStyle::Chunked).await;
    let mut o = opts(Mode::Sse, addr, 3, Limit::Requests(30));
    o.max_tokens = 7;
    o.backend_header = Some("x-backend".into());
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!((r.requests, r.ok, r.tokens), (30, 30, 210));
    assert_eq!((r.ttft.count, r.ttfb.count, r.request.count), (30, 30, 30));
    assert!(
        (1..=3).contains(&r.connections_opened),
        "keep-alive: at most one connection per worker, saw {}",
        r.connections_opened
    );
    assert_eq!(r.connect.count, r.connections_opened);
    assert_eq!(r.backends.values().sum::<u64>(), 30);
    assert!(
        r.backends.keys().all(|k| k == "gpu-0" || k == "gpu-1"),
        "{:?}",
        r.backends
    );
    assert!(r.ttft.max <= r.request.max && r.ttfb.p50 <= r.request.p50);
    assert!(r.bytes > 0 && r.bytes_sent > 0 && r.tokens_per_s > 0.0);
    assert_eq!(r.queue.count, 0, "closed loop has no queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_close_delimited_streams_reconnect() {
    let addr = sse_server(SseStyle::CloseDelimited).await;
    let mut o = opts(Mode::Sse, addr, 1, Limit::Requests(5));
    o.max_tokens = 4;
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!((r.ok, r.tokens, r.connections_opened), (5, 20, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_cut_mid_way_is_a_closed_error() {
    let addr = sse_server(SseStyle::CutAfter(3)).await;
    let mut o = opts(Mode::Sse, addr, 2, Limit::Requests(4));
    o.max_tokens = 10;
    let r = run(o).await.unwrap();
    assert_eq!(
        (r.requests, r.ok, r.errors.total, r.errors.closed),
        (4, 0, 4, 4)
    );
    assert_eq!(r.tokens, 12, "tokens received before the cut still count");
    assert!(
        r.error_samples
            .iter()
            .any(|s| s.message.contains("no [DONE]")),
        "{:?}",
        r.error_samples
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_has_one_line_per_request_with_backend_and_error() {
    let addr = sse_server(SseStyle::CutAfter(3)).await;
    let path = std::env::temp_dir().join(format!("ringlb-load-reqlog-{}", std::process::id()));
    let mut o = opts(Mode::Sse, addr, 2, Limit::Requests(4));
    o.max_tokens = 10;
    o.backend_header = Some("x-backend".into());
    o.request_log = Some(path.clone());
    let r = run(o).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<RequestLogEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, r.requests);
    for l in &lines {
        assert!(!l.ok, "{l:?}");
        assert_eq!((l.error.as_deref(), l.tokens), (Some("closed"), 3), "{l:?}");
        assert!(
            l.backend.as_deref().is_some_and(|b| b.starts_with("gpu-")),
            "{l:?}"
        );
        let (start, first) = (l.start.unwrap(), l.first_byte.unwrap());
        assert!(
            start <= first && first <= l.first_token.unwrap() && l.first_token.unwrap() <= l.end
        );
    }

    let refused = {
        let (listener, addr) = listen().await;
        drop(listener);
        addr
    };
    let path = std::env::temp_dir().join(format!("ringlb-load-reqlog-c-{}", std::process::id()));
    let mut o = opts(Mode::Sse, refused, 1, Limit::Requests(2));
    o.request_log = Some(path.clone());
    let r = run(o).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((r.errors.connect, text.lines().count()), (2, 2));
    let first: RequestLogEntry = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first.error.as_deref(), first.backend),
        (Some("connect"), None)
    );
    assert!(first.start.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_streams_several_requests_per_socket() {
    let addr = ws_server().await;
    let mut o = opts(Mode::Websocket, addr, 2, Limit::Requests(10));
    o.max_tokens = 5;
    o.backend_header = Some("x-backend".into());
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!((r.requests, r.ok, r.tokens, r.ttft.count), (10, 10, 50, 10));
    assert!(
        (1..=2).contains(&r.connections_opened),
        "sockets are reused: {}",
        r.connections_opened
    );
    assert_eq!(r.backends.get("ws-a"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_keep_alive_and_new_connection_per_request() {
    let server = http_server(None).await;
    let r = run(opts(Mode::Http, server.addr, 2, Limit::Requests(20)))
        .await
        .unwrap();
    assert_clean(&r);
    assert_eq!(r.ok, 20);
    let kept = server.accepts.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&kept),
        "keep-alive reuses connections, saw {kept} accepts"
    );
    assert_eq!(r.connections_opened as usize, kept);

    let server = http_server(None).await;
    let mut o = opts(Mode::Http, server.addr, 2, Limit::Requests(20));
    o.new_connection_per_request = true;
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!(server.accepts.load(Ordering::SeqCst), 20);
    assert_eq!((r.ok, r.connections_opened, r.connect.count), (20, 20, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_chunked_bodies_and_status_errors() {
    let server = http_server(None).await;
    let mut o = opts(Mode::Http, server.addr, 1, Limit::Requests(3));
    o.path = Some("/chunked".into());
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!(r.ok, 3);
    assert_eq!(
        server.accepts.load(Ordering::SeqCst),
        1,
        "chunked body read to its end, connection reused"
    );

    let mut o = opts(Mode::Http, server.addr, 1, Limit::Requests(2));
    o.path = Some("/missing".into());
    let r = run(o).await.unwrap();
    assert_eq!((r.ok, r.errors.protocol), (0, 2));
    assert!(r.error_samples[0].message.contains("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_target_counts_connect_errors() {
    let (listener, addr) = listen().await;
    drop(listener);
    let r = run(opts(Mode::Http, addr, 1, Limit::Requests(5)))
        .await
        .unwrap();
    assert_eq!(
        (r.requests, r.ok, r.errors.total, r.errors.connect),
        (5, 0, 5, 5)
    );
    assert_eq!(r.connections_opened, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    let server = http_server(None).await;
    let mut o = opts(Mode::Http, server.addr, 2, Limit::Requests(2));
    o.path = Some("/silent".into());
    o.timeout = Duration::from_millis(150);
    let r = run(o).await.unwrap();
    assert_eq!((r.ok, r.errors.timeout), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_mismatch_is_detected() {
    let addr = echo_server(100, true).await;
    let r = run(opts(Mode::TcpEcho, addr, 1, Limit::Requests(9)))
        .await
        .unwrap();
    assert_eq!(
        (r.requests, r.ok, r.errors.mismatch, r.errors.total),
        (9, 6, 3, 3)
    );
    assert_eq!(r.connections_opened, 3, "a mismatch drops the connection");
}

#[test]
fn echo_clean_via_run_blocking() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(echo_server(1000, false));
    let mut o = opts(Mode::TcpEcho, addr, 4, Limit::Requests(50));
    o.message_size = 1000;
    let r = run_blocking(o).unwrap();
    assert_clean(&r);
    assert_eq!(
        (r.ok, r.bytes, r.bytes_sent, r.ttfb.count),
        (50, 50_000, 50_000, 50)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_issues_the_rate() {
    let server = http_server(None).await;
    let mut o = opts(
        Mode::Http,
        server.addr,
        4,
        Limit::Duration(Duration::from_secs(1)),
    );
    o.rate = Some(200.0);
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert!(
        (160..=240).contains(&r.requests),
        "{} requests at 200/s for 1s",
        r.requests
    );
    assert!((0.9..1.5).contains(&r.duration_s), "{}", r.duration_s);
    assert_eq!(r.queue.count, r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_queueing_behind_a_stall() {
    // One connection, 100 req/s, request 10 stalls 200 ms: the ~20 requests due meanwhile wait
    // and must be measured from their intended start, not from when they were finally sent.
    let server = http_server(Some(10)).await;
    let mut o = opts(Mode::Http, server.addr, 1, Limit::Requests(100));
    o.rate = Some(100.0);
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!(r.ok, 100);
    assert!(r.request.max >= 200_000, "{:?}", r.request);
    assert!(
        r.request.p99 >= 150_000,
        "p99 must include the queueing: {:?}",
        r.request
    );
    assert!(
        r.request.p90 >= 50_000,
        "~20% of requests queued: {:?}",
        r.request
    );
    assert!(r.queue.max >= 150_000, "{:?}", r.queue);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_all_connections_at_once() {
    let server = idle_server(false).await;
    let r = run(opts(
        Mode::Idle,
        server.addr,
        30,
        Limit::Duration(Duration::from_millis(400)),
    ))
    .await
    .unwrap();
    assert_clean(&r);
    assert_eq!(
        (r.requests, r.ok, r.connections_opened, r.closed_early),
        (30, 30, 30, 0)
    );
    assert_eq!(server.peak.load(Ordering::SeqCst), 30);
    assert!(
        r.request.p50 >= 300_000,
        "connections are held until the end: {:?}",
        r.request
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_counts_connections_closed_early() {
    let server = idle_server(true).await;
    let r = run(opts(
        Mode::Idle,
        server.addr,
        20,
        Limit::Duration(Duration::from_millis(400)),
    ))
    .await
    .unwrap();
    assert_eq!(
        (r.connections_opened, r.closed_early, r.errors.closed, r.ok),
        (20, 10, 10, 10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_writes_json_and_exits_zero_or_two() {
    let addr = sse_server(SseStyle::Chunked).await;
    let dir = std::env::temp_dir().join(format!("ringlb-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let args: Vec<String> = [
        "sse",
        "--target",
        &addr.to_string(),
        "--connections",
        "2",
        "--requests",
        "6",
        "--max-tokens",
        "3",
        "--backend-header",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringlb-load"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("first token") && stdout.contains("p99.9"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for metric in ["connect", "ttfb", "ttft", "request", "queue"] {
        for key in ["count", "p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(v[metric][key].is_number(), "{metric}.{key} in {v}");
        }
    }
    for key in [
        "requests",
        "duration_s",
        "requests_per_s",
        "bytes",
        "tokens",
        "tokens_per_s",
    ] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    for kind in [
        "total", "connect", "timeout", "protocol", "closed", "mismatch",
    ] {
        assert_eq!(v["errors"][kind], 0, "errors.{kind} in {v}");
    }
    assert_eq!(
        (v["requests"].as_u64(), v["tokens"].as_u64()),
        (Some(6), Some(18))
    );
    assert_eq!(
        v["backends"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c.as_u64().unwrap())
            .sum::<u64>(),
        6
    );
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back.ttft.count, 6);
    std::fs::remove_dir_all(&dir).unwrap();

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb-load"))
        .args([
            "idle",
            "--target",
            "127.0.0.1:1",
            "--connections",
            "2",
            "--requests",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "idle with --requests is a usage error"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb-load"))
        .args(["sse", "--target", "127.0.0.1:1", "--connections", "2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "needs --duration or --requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_dist_draws_each_requests_length_from_the_seed() {
    let addr = sse_server(SseStyle::Chunked).await;
    let dist: ringlb::tools::fleet::TokenDist =
        "lognormal:median=20,sigma=1,max=300".parse().unwrap();
    let run_logged = |seed: u64, name: &str| {
        let path = std::env::temp_dir().join(format!("ringlb-load-{name}-{}", std::process::id()));
        let mut o = opts(Mode::Sse, addr, 3, Limit::Requests(40));
        o.max_tokens_dist = Some(dist);
        o.seed = seed;
        o.request_log = Some(path.clone());
        async move {
            let r = run(o).await.unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            let lines: Vec<RequestLogEntry> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (r, lines)
        }
    };
    let (r, lines) = run_logged(9, "dist-a").await;
    assert_clean(&r);
    assert_eq!(lines.len(), 40);
    // The server streams exactly what was asked: each request carried its own draw.
    for l in &lines {
        assert_eq!(Some(l.tokens), l.max_tokens, "{l:?}");
    }
    let mut asked: Vec<u64> = lines.iter().filter_map(|l| l.max_tokens).collect();
    asked.sort_unstable();
    let lengths = ringlb::tools::load::Lengths::Drawn { dist, seed: 9 };
    let mut want: Vec<u64> = (0..40).map(|i| lengths.for_request(i)).collect();
    want.sort_unstable();
    assert_eq!(asked, want);
    assert_eq!(r.tokens, want.iter().sum::<u64>());
    assert!(asked.first() != asked.last(), "the lengths vary: {asked:?}");
    let (_, again) = run_logged(9, "dist-b").await;
    let mut again: Vec<u64> = again.iter().filter_map(|l| l.max_tokens).collect();
    again.sort_unstable();
    assert_eq!(again, want, "the same seed asks for the same lengths");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inter_token_latency_and_time_per_token_follow_a_paced_stream() {
    use ringlb::tools::fleet::{MockBackend, MockOptions};
    let backend = MockBackend::start(MockOptions {
        name: "paced".to_string(),
        tokens_per_sec: 100.0,
        ttft: Duration::from_millis(1),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let mut o = opts(Mode::Sse, backend.addr(), 4, Limit::Requests(8));
    o.max_tokens = 20;
    let r = run(o).await.unwrap();
    assert_clean(&r);
    assert_eq!(r.tokens, 160);
    // 19 gaps per stream at most (tokens that arrive in one read are one gap).
    assert!(
        (8..=8 * 19).contains(&r.itl.count),
        "itl count {}",
        r.itl.count
    );
    assert_eq!(r.tpot.count, 8);
    // 100 tokens/s: 10 ms between tokens, whatever the timer's granularity adds.
    for (name, m) in [("itl", r.itl), ("tpot", r.tpot)] {
        assert!((8_000..=30_000).contains(&m.p50), "{name} {m:?}");
    }
}
