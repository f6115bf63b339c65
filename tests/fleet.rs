//! Mock backend over real sockets: SSE, JSON, WebSocket, health/metrics, capacity queueing,
//! raw TCP modes and garbage input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ringlb::tools::fleet::{pattern_fill, FleetError, MockBackend, MockOptions, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Fast pacing so whole generations take milliseconds.
fn fast(name: &str) -> MockOptions {
    MockOptions {
        name: name.to_string(),
        tokens_per_sec: 20_000.0,
        ttft: Duration::from_millis(1),
        ..MockOptions::default()
    }
}

fn completion(max_tokens: u64, stream: bool) -> Vec<u8> {
    let body = format!(r#"{{"prompt":"hello","max_tokens":{max_tokens},"stream":{stream}}}"#);
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client that decodes chunked bodies and SSE events incrementally.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    pending: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        Client {
            s,
            buf: Vec::new(),
            pending: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) {
        let n = self.s.read_buf(&mut self.buf).await.unwrap();
        assert!(n > 0, "unexpected EOF");
    }

    async fn head(&mut self) -> Head {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).unwrap() {
                let head = Head {
                    status: r.code.unwrap(),
                    headers: (r.headers.iter())
                        .map(|h| {
                            let v = String::from_utf8(h.value.to_vec()).unwrap();
                            (h.name.to_ascii_lowercase(), v)
                        })
                        .collect(),
                };
                self.buf.drain(..n);
                return head;
            }
            self.fill().await;
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().await;
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(pos + 2).await;
                return String::from_utf8(line[..pos].to_vec()).unwrap();
            }
            self.fill().await;
        }
    }

    /// The next chunk's data; `None` for the last (empty) chunk.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let size = usize::from_str_radix(self.line().await.trim(), 16).unwrap();
        let data = self.take(size).await;
        assert_eq!(self.take(2).await, b"\r\n", "chunk not followed by CRLF");
        (size > 0).then_some(data)
    }

    /// The next SSE event's data; `None` at the end of the chunked body.
    async fn event(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..pos + 2).collect();
                let text = String::from_utf8(event[..pos].to_vec()).unwrap();
                return Some(text.strip_prefix("data: ").unwrap().to_string());
            }
            match self.chunk().await {
                Some(data) => self.pending.extend_from_slice(&data),
                None => {
                    assert!(self.pending.is_empty(), "body ended inside an event");
                    return None;
                }
            }
        }
    }

    /// Reads a whole SSE response: asserts the head, returns the token texts before [DONE].
    async fn sse_tokens(&mut self, backend: &str) -> Vec<String> {
        let head = self.head().await;
        assert_eq!(head.status, 200);
        assert_eq!(head.get("content-type"), Some("text/event-stream"));
        assert_eq!(head.get("transfer-encoding"), Some("chunked"));
        assert_eq!(head.get("x-backend"), Some(backend));
        let mut tokens = Vec::new();
        loop {
            let data = self.event().await.expect("stream ended before [DONE]");
            if data == "[DONE]" {
                break;
            }
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            assert_eq!(v["object"], "text_completion");
            tokens.push(v["choices"][0]["text"].as_str().unwrap().to_string());
        }
        assert_eq!(self.event().await, None, "events after [DONE]");
        tokens
    }

    async fn body(&mut self, head: &Head) -> Vec<u8> {
        let len: usize = head.get("content-length").unwrap().parse().unwrap();
        self.take(len).await
    }

    /// Asserts the server closed the connection (after any bytes already buffered).
    async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "unexpected bytes before EOF");
    }
}

fn expected_tokens(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("tok{i} ")).collect()
}

async fn get(addr: SocketAddr, path: &str) -> (Head, Vec<u8>) {
    let mut c = Client::connect(addr).await;
    c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await;
    let head = c.head().await;
    let body = c.body(&head).await;
    (head, body)
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, body) = get(addr, "/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let prefix = format!("{name}{{");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Scrapes `/metrics` until `name` reads `value`; fails after a generous deadline.
async fn wait_metric(addr: SocketAddr, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(addr, name).await != value {
        assert!(Instant::now() < deadline, "{name} never reached {value}");
    }
}

#[tokio::test]
async fn sse_stream_framing_and_keep_alive() {
    let backend = MockBackend::start(fast("b1")).await.unwrap();
    let mut c = Client::connect(backend.addr()).await;
    c.send(&completion(5, true)).await;
    assert_eq!(c.sse_tokens("b1").await, expected_tokens(5));
    c.send(&completion(3, true)).await;
    assert_eq!(c.sse_tokens("b1").await, expected_tokens(3));
    let s = backend.stats().snapshot();
    assert_eq!(
        (s.total_requests, s.total_streams, s.total_tokens),
        (2, 2, 8)
    );
    assert_eq!((s.active, s.waiting, s.aborted_streams), (0, 0, 0));
    assert_eq!(s.ttft_count, 2);
    assert!(
        s.ttft_p50_us >= 1000,
        "ttft below the configured 1 ms: {s:?}"
    );
    let addr = backend.addr();
    backend.stop().await;
    c.expect_eof().await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn idle_timeout_closes_silent_and_partial_clients() {
    let opts = MockOptions {
        idle_timeout: Some(Duration::from_millis(100)),
        ..fast("i1")
    };
    let backend = MockBackend::start(opts).await.unwrap();
    let started = Instant::now();
    let mut silent = Client::connect(backend.addr()).await;
    let mut partial = Client::connect(backend.addr()).await;
    partial.send(b"GET /health HTTP/1.1\r\nHost:").await;
    silent.expect_eof().await;
    partial.expect_eof().await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    // A request in time is still served, and the connection stays usable for another.
    let mut c = Client::connect(backend.addr()).await;
    for _ in 0..2 {
        c.send(b"GET /health HTTP/1.1\r\n\r\n").await;
        let head = c.head().await;
        assert_eq!(c.body(&head).await, b"ok");
    }
}

#[tokio::test]
async fn http10_stream_is_close_delimited() {
    let backend = MockBackend::start(fast("h10")).await.unwrap();
    let mut c = Client::connect(backend.addr()).await;
    let req = String::from_utf8(completion(3, true)).unwrap();
    c.send(req.replacen("HTTP/1.1", "HTTP/1.0", 1).as_bytes())
        .await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("transfer-encoding"), None);
    assert_eq!(head.get("connection"), Some("close"));
    let mut body = std::mem::take(&mut c.buf);
    c.s.read_to_end(&mut body).await.unwrap();
    let text = String::from_utf8(body).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.len(), 4);
    assert!(events[2].starts_with("data: {") && events[2].contains("tok2 "));
    assert_eq!(events[3], "data: [DONE]");
}

#[tokio::test]
async fn json_completion_pipelined_and_expect_continue() {
    let backend = MockBackend::start(fast("b2")).await.unwrap();
    let mut c = Client::connect(backend.addr()).await;
    // Two pipelined requests in one write, answered in order on the same connection.
    let mut both = completion(3, false);
    both.extend_from_slice(&completion(2, false));
    c.send(&both).await;
    for n in [3, 2] {
        let head = c.head().await;
        assert_eq!(head.status, 200);
        assert_eq!(head.get("x-backend"), Some("b2"));
        assert_eq!(head.get("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&c.body(&head).await).unwrap();
        assert_eq!(v["choices"][0]["text"], expected_tokens(n).concat());
        assert_eq!(v["usage"]["completion_tokens"], n);
    }
    let body = r#"{"max_tokens":1}"#;
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(req.as_bytes()).await;
    assert_eq!(c.head().await.status, 100);
    c.send(body.as_bytes()).await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&c.body(&head).await).unwrap();
    assert_eq!(v["choices"][0]["text"], "tok0 ");
    assert_eq!(backend.stats().snapshot().total_tokens, 6);
}

#[tokio::test]
async fn websocket_tokens_then_done_twice() {
    let backend = MockBackend::start(fast("ws1")).await.unwrap();
    let url = format!("ws://{}/v1/stream", backend.addr());
    let (mut ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.headers()["x-backend"], "ws1");
    for n in [4u64, 2] {
        let req = format!(r#"{{"prompt":"hi","max_tokens":{n}}}"#);
        ws.send(Message::text(req)).await.unwrap();
        let mut got = Vec::new();
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let text = msg.into_text().unwrap().to_string();
            if text == "[DONE]" {
                break;
            }
            got.push(text);
        }
        assert_eq!(got, expected_tokens(n));
    }
    ws.send(Message::text("not json")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1007),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let s = backend.stats().snapshot();
    assert_eq!((s.total_streams, s.total_tokens), (2, 6));
}

#[tokio::test]
async fn health_metrics_and_gauges_follow_a_stream() {
    let opts = MockOptions {
        tokens_per_sec: 20.0,
        ..fast("m1")
    };
    let backend = MockBackend::start(opts).await.unwrap();
    let addr = backend.addr();
    let (head, body) = get(addr, "/health").await;
    assert_eq!((head.status, body.as_slice()), (200, &b"ok"[..]));
    let (head, body) = get(addr, "/metrics").await;
    assert!(head.get("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    for name in ["vllm:num_requests_running", "vllm:num_requests_waiting"] {
        assert!(text.contains(&format!(
            "# TYPE {name} gauge\n{name}{{model_name=\"m1\",engine=\"0\"}} 0\n"
        )));
    }
    assert!(text.contains("# TYPE vllm:generation_tokens_total counter\n"));

    // A slow stream holds its slot: running reads 1 while it is open.
    let mut c = Client::connect(addr).await;
    c.send(&completion(1000, true)).await;
    assert_eq!(c.head().await.status, 200);
    assert!(c.event().await.unwrap().contains("tok0 "));
    assert_eq!(metric(addr, "vllm:num_requests_running").await, 1.0);
    assert!(metric(addr, "vllm:generation_tokens_total").await >= 1.0);
    assert_eq!(metric(addr, "vllm:request_received_total").await, 1.0);
    // Hanging up frees the slot (noticed at the next token write).
    drop(c);
    wait_metric(addr, "vllm:num_requests_running", 0.0).await;
    assert_eq!(backend.stats().snapshot().aborted_streams, 1);
}

#[tokio::test]
async fn capacity_queues_fifo_and_shows_waiting() {
    let tokens = 40u64;
    let opts = MockOptions {
        capacity: 1,
        tokens_per_sec: 200.0,
        ..fast("q1")
    };
    let interval = Duration::from_millis(5);
    let backend = MockBackend::start(opts).await.unwrap();
    let addr = backend.addr();
    let mut a = Client::connect(addr).await;
    let a_sent = Instant::now();
    a.send(&completion(tokens, true)).await;
    assert_eq!(a.head().await.status, 200);
    a.event().await.unwrap();
    let mut b = Client::connect(addr).await;
    b.send(&completion(tokens, true)).await;
    assert_eq!(b.head().await.status, 200);
    wait_metric(addr, "vllm:num_requests_waiting", 1.0).await;
    assert_eq!(backend.stats().snapshot().active, 1);
    // B's first token cannot come before all of A's tokens were generated.
    let b_data = b.event().await.unwrap();
    let gap = a_sent.elapsed();
    assert!(b_data.contains("tok0 "));
    assert!(
        gap >= interval * (tokens as u32 - 1),
        "B started after only {gap:?}"
    );
    let mut a_rest = 1;
    while a.event().await.unwrap() != "[DONE]" {
        a_rest += 1;
    }
    assert_eq!(a_rest, tokens);
    assert!(backend.stats().snapshot().ttft_max_us >= 100_000);

    // A client that hangs up while queued leaves the queue without taking a slot.
    let mut c = Client::connect(addr).await;
    c.send(&completion(1, true)).await;
    wait_metric(addr, "vllm:num_requests_waiting", 1.0).await;
    drop(c);
    wait_metric(addr, "vllm:num_requests_waiting", 0.0).await;
    assert_eq!(backend.stats().snapshot().aborted_streams, 1);
    while b.event().await.unwrap() != "[DONE]" {}
    let s = backend.stats().snapshot();
    assert_eq!((s.active, s.waiting, s.total_streams), (0, 0, 2));
}

fn raw(mode: Mode) -> MockOptions {
    MockOptions {
        mode,
        ..fast("raw")
    }
}

#[tokio::test]
async fn echo_returns_every_byte_and_honours_half_close() {
    let backend = MockBackend::start(raw(Mode::Echo)).await.unwrap();
    let mut data = vec![0u8; 4 << 20];
    rand::Rng::fill(&mut rand::thread_rng(), &mut data[..]);
    let sent_hash = blake3::hash(&data);
    let (mut rd, mut wr) = TcpStream::connect(backend.addr())
        .await
        .unwrap()
        .into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut back = Vec::new();
    rd.read_to_end(&mut back).await.unwrap();
    let _wr = writer.await.unwrap();
    assert_eq!(back.len(), 4 << 20);
    assert_eq!(blake3::hash(&back), sent_hash);
    let s = backend.stats().snapshot();
    assert_eq!((s.bytes_in, s.bytes_out), (4 << 20, 4 << 20));
}

#[tokio::test]
async fn source_writes_exact_pattern_then_closes() {
    let bytes = 1_000_003u64;
    let backend = MockBackend::start(raw(Mode::Source { bytes }))
        .await
        .unwrap();
    let mut s = TcpStream::connect(backend.addr()).await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    let mut want = vec![0u8; bytes as usize];
    pattern_fill(0, &mut want);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "source bytes differ from the pattern");
}

#[tokio::test]
async fn sink_counts_until_eof() {
    let backend = MockBackend::start(raw(Mode::Sink)).await.unwrap();
    let mut s = TcpStream::connect(backend.addr()).await.unwrap();
    s.write_all(&vec![7u8; 3 << 20]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, format!("{}\n", 3 << 20));
}

#[tokio::test]
async fn respond_answers_each_line_and_keeps_the_connection() {
    let bytes = 100_000usize;
    let opts = raw(Mode::Respond {
        bytes: bytes as u64,
    });
    let backend = MockBackend::start(opts).await.unwrap();
    let mut want = vec![0u8; bytes];
    pattern_fill(0, &mut want);
    let mut s = TcpStream::connect(backend.addr()).await.unwrap();
    s.write_all(b"GET 1\n").await.unwrap();
    let mut got = vec![0u8; bytes];
    s.read_exact(&mut got).await.unwrap();
    assert!(got == want);
    s.write_all(b"a\nb\n").await.unwrap();
    for _ in 0..2 {
        s.read_exact(&mut got).await.unwrap();
        assert!(got == want);
    }
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn garbage_gets_4xx_and_the_server_survives() {
    let backend = MockBackend::start(fast("g1")).await.unwrap();
    let addr = backend.addr();
    let mut huge = b"GET /health HTTP/1.1\r\nX-Big: ".to_vec();
    huge.resize(64 * 1024, b'a');
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec(), 400),
        (b"HELLO\r\n\r\n".to_vec(), 400),
        (
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}".to_vec(),
            400,
        ),
        (completion(100_000_000, true), 400),
        (b"GET /nope HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /v1/stream HTTP/1.1\r\n\r\n".to_vec(), 426),
        (huge, 431),
    ];
    for (input, status) in cases {
        let mut c = Client::connect(addr).await;
        c.send(&input).await;
        let head = c.head().await;
        assert_eq!(
            head.status,
            status,
            "for {:?}",
            String::from_utf8_lossy(&input[..20])
        );
        assert_eq!(head.get("connection"), Some("close"));
        c.body(&head).await;
        c.expect_eof().await;
    }
    let mut rng = rand::thread_rng();
    for _ in 0..50 {
        let len = rand::Rng::gen_range(&mut rng, 1..600);
        let mut junk = vec![0u8; len];
        rand::Rng::fill(&mut rng, &mut junk[..]);
        junk.extend_from_slice(b"\r\n\r\n");
        let mut c = Client::connect(addr).await;
        c.send(&junk).await;
        assert_eq!(c.head().await.status, 400);
    }
    assert_eq!(get(addr, "/health").await.0.status, 200);
}

#[test]
fn spawned_backend_serves_sync_callers_and_shuts_down() {
    let backend = MockBackend::spawn(fast("s1")).unwrap();
    let addr = backend.addr();
    assert_eq!(backend.name(), "s1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A kept-alive connection that was served (so surely accepted) and is now idle.
    let mut idle = rt.block_on(async {
        let mut c = Client::connect(addr).await;
        c.send(b"GET /health HTTP/1.1\r\n\r\n").await;
        let head = c.head().await;
        assert_eq!(c.body(&head).await, b"ok");
        c
    });
    backend.shutdown();
    rt.block_on(async {
        idle.expect_eof().await;
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    });
}

#[test]
fn invalid_options_are_refused() {
    let bad = [
        MockOptions {
            capacity: 0,
            ..MockOptions::default()
        },
        MockOptions {
            tokens_per_sec: f64::NAN,
            ..MockOptions::default()
        },
        MockOptions {
            tokens_per_sec: 0.0,
            ..MockOptions::default()
        },
        MockOptions {
            name: "a b".to_string(),
            ..MockOptions::default()
        },
    ];
    for opts in bad {
        let field = match MockBackend::spawn(opts) {
            Err(FleetError::InvalidOption { field, .. }) => field,
            other => panic!("expected InvalidOption, got {:?}", other.map(|b| b.addr())),
        };
        assert!(["capacity", "tokens_per_sec", "name"].contains(&field));
    }
}
