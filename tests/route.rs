//! Content routing end to end (issue 13): real clients, real backends on 127.0.0.1, one
//! listener with the rules. Every peeked byte must reach the chosen backend
//! unchanged (each backend says who it is, then echoes what it got).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A WebSocket echo server (tungstenite) for the realtime pool.
fn ws_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(s) else {
                    return;
                };
                while let Ok(msg) = ws.read() {
                    if msg.is_close() || ws.send(msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    a
}

const GENERAL: u8 = 0;
const EMBED: u8 = 2;
const LARGE: u8 = 3;

fn config(peek_timeout: &str) -> String {
    format!(
        "[runtime]\nworkers = 2\n\
         [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"general\"\n\
         peek_timeout = \"{peek_timeout}\"\n\
         [[listener.route]]\nwebsocket = true\npath_prefix = \"/v1/realtime\"\npool = \"realtime\"\n\
         [[listener.route]]\npath_prefix = \"/v1/embeddings\"\npool = \"embed\"\n\
         [[listener.route]]\nmodel = [\"llama-3.1-70b*\"]\npool = \"large\"\n\
         [[listener.route]]\nsni = [\"*.internal.example\"]\npool = \"tls\"\n\
         [[pool]]\nname = \"general\"\n[[pool.backend]]\naddr = \"{{B0}}\"\n\
         [[pool]]\nname = \"realtime\"\n[[pool.backend]]\naddr = \"{{B1}}\"\n\
         [[pool]]\nname = \"embed\"\n[[pool.backend]]\naddr = \"{{B2}}\"\n\
         [[pool]]\nname = \"large\"\n[[pool.backend]]\naddr = \"{{B3}}\"\n\
         [[pool]]\nname = \"tls\"\n[[pool.backend]]\naddr = \"{{B4}}\"\n"
    )
}

fn run_with(peek_timeout: &str, tls: SocketAddr) -> ringlb::engine::Server {
    let backends = [
        id_echo(GENERAL),
        ws_echo(),
        id_echo(EMBED),
        id_echo(LARGE),
        tls,
    ];
    start(&config(peek_timeout), &backends)
}

fn run() -> ringlb::engine::Server {
    run_with("5s", id_echo(4))
}

/// Sends `req` in the given pieces, then FIN; returns the backend's id and what it echoed.
fn ask_in_pieces(to: SocketAddr, pieces: &[&[u8]]) -> (u8, Vec<u8>) {
    let mut s = connect(to);
    s.set_nodelay(true).unwrap();
    for p in pieces {
        s.write_all(p).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("answer, then EOF");
    assert!(!all.is_empty(), "no backend answered");
    (all[0], all[1..].to_vec())
}

fn ask(to: SocketAddr, req: &[u8]) -> u8 {
    let (id, echo) = ask_in_pieces(to, &[req]);
    assert_eq!(
        hash(&echo),
        hash(req),
        "the backend got other bytes than were sent"
    );
    id
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(path: &str, body: &str) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n");
    for part in body.as_bytes().chunks(7000) {
        r += &format!("{:x}\r\n{}\r\n", part.len(), String::from_utf8_lossy(part));
    }
    r += "0\r\n\r\n";
    r.into_bytes()
}

/// A chat body with `history` bytes of messages before its top-level model.
fn chat(history: usize, model: &str) -> String {
    let text = "x".repeat(history);
    format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{text}\",\"model\":\"qwen-7b\"}}],\
         \"model\":\"{model}\",\"stream\":true}}"
    )
}

#[test]
fn paths_and_garbage_land_on_their_pools_with_every_byte_unchanged() {
    let lb = run();
    let to = addr(&lb);
    assert_eq!(
        ask(to, &post("/v1/embeddings", "{\"input\":\"hi\"}")),
        EMBED
    );
    assert_eq!(
        ask(to, &post("/v1/completions", "{\"prompt\":\"hi\"}")),
        GENERAL
    );
    assert_eq!(ask(to, b"\x00\x01 not http at all\r\n\r\n"), GENERAL);
}

#[test]
fn the_json_model_routes_after_100_kib_of_messages_plain_or_chunked_and_nested_does_not() {
    let lb = run();
    let to = addr(&lb);
    let body = chat(100 * 1024, "llama-3.1-70b-instruct");
    assert_eq!(ask(to, &post("/v1/chat/completions", &body)), LARGE);
    assert_eq!(ask(to, &chunked("/v1/chat/completions", &body)), LARGE);
    // Only the nested one says llama: the top-level model is qwen.
    let nested = chat(1024, "qwen-7b").replace("\"qwen-7b\"}]", "\"llama-3.1-70b\"}]");
    assert_eq!(ask(to, &post("/v1/chat/completions", &nested)), GENERAL);
}

#[test]
fn a_request_split_at_every_byte_of_its_head_routes_and_arrives_the_same() {
    let lb = run();
    let to = addr(&lb);
    let req = post("/v1/embeddings", "{\"input\":\"split\"}");
    let head = req.iter().position(|&b| b == b'{').unwrap();
    for k in 1..head {
        let (id, echo) = ask_in_pieces(to, &[&req[..k], &req[k..]]);
        assert_eq!(id, EMBED, "split at {k}");
        assert_eq!(echo, req, "split at {k}");
    }
}

#[test]
fn a_websocket_upgrade_to_v1_realtime_lands_on_realtime_and_the_session_works() {
    let lb = run();
    let to = addr(&lb);
    let stream = TcpStream::connect(to).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{to}/v1/realtime"), stream)
        .expect("the upgrade goes through to the realtime pool");
    for i in 0..5 {
        let msg = format!("turn {i}");
        ws.send(tungstenite::Message::text(msg.clone())).unwrap();
        assert_eq!(ws.read().unwrap().into_text().unwrap().as_str(), msg);
    }
    let _ = ws.close(None);
}

/// A TLS server (openssl s_server, certificate for a.internal.example) that answers each
/// line reversed; killed on drop.
struct TlsServer {
    child: Child,
    addr: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = common::process::temp_dir("route-tls");
    let (key, cert) = (dir.join("k.pem"), dir.join("c.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=a.internal.example", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "certificate made");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-rev", "-accept"])
        .arg(addr.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_server starts");
    wait_for("s_server listening", || TcpStream::connect(addr).is_ok());
    TlsServer {
        child,
        addr,
        _dir: dir,
    }
}

#[test]
fn a_tls_client_with_a_matching_sni_reaches_the_tls_pool_and_its_handshake_completes() {
    let server = tls_server();
    let lb = run_with("5s", server.addr);
    let to = addr(&lb);
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-servername",
            "a.internal.example",
            "-connect",
        ])
        .arg(to.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client starts");
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"ringlb passthrough\n").unwrap();
    let mut out = client.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let end = Instant::now() + DEADLINE;
    while !String::from_utf8_lossy(&got).contains("hguorhtssap blgnir") {
        assert!(Instant::now() < end, "no reversed line through TLS");
        match out.read(&mut buf) {
            Ok(0) => panic!("s_client ended: {:?}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e}"),
        }
    }
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
}

/// Raises the soft descriptor limit to `want` (at most the hard limit): 2,000 clients and
/// their 2,000 accepted sockets live in this one process.
fn raise_nofile(want: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if r.rlim_cur < want {
        r.rlim_cur = want.min(r.rlim_max);
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    }
}

#[test]
fn slow_clients_are_closed_at_peek_timeout_while_others_are_served() {
    const SLOW: usize = 2000;
    raise_nofile(4 * SLOW as u64 + 1024);
    let lb = run_with("400ms", id_echo(4));
    let to = addr(&lb);
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut s = connect(to);
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    // Served while the slow ones wait.
    assert_eq!(ask(to, &post("/v1/embeddings", "{}")), EMBED);
    for mut s in slow {
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a slow client was not closed: {other:?}"),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed before peek_timeout"
    );
    wait_for("every slow client counted", || {
        lb.stats().peek_timeouts == SLOW as u64
    });
}
