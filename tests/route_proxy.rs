//! PROXY protocol both ways and session-keyed hashing (issue 13), end to end: a backend that
//! parses the PROXY header ringlb sends, a client behind an "L4 hop" that sends one, and
//! `hash_key = "header:x-session-id"` keeping a session on one backend.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;

use common::*;

/// Reads a PROXY header (v1 line or v2 binary), answers it as text ("v1 <line>" or
/// "v2 <family> <src> <dst>") followed by "|" and an echo of the rest until EOF.
fn proxy_parsing_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || serve_proxy(s));
        }
    });
    a
}

fn serve_proxy(mut s: TcpStream) {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    const SIG: &[u8] = b"\r\n\r\n\x00\r\nQUIT\n";
    let (answer, rest) = if all.starts_with(SIG) && all.len() >= 16 {
        let len = u16::from_be_bytes([all[14], all[15]]) as usize;
        let body = &all[16..16 + len];
        let text = match all[13] {
            0x11 => format!(
                "v2 tcp4 {}.{}.{}.{}:{} {}.{}.{}.{}:{}",
                body[0],
                body[1],
                body[2],
                body[3],
                u16::from_be_bytes([body[8], body[9]]),
                body[4],
                body[5],
                body[6],
                body[7],
                u16::from_be_bytes([body[10], body[11]])
            ),
            other => format!("v2 family {other:#x}"),
        };
        (text, &all[16 + len..])
    } else if let Some(end) = all.windows(2).position(|w| w == b"\r\n") {
        (
            format!("v1 {}", String::from_utf8_lossy(&all[..end])),
            &all[end + 2..],
        )
    } else {
        ("none".to_string(), &all[..])
    };
    let _ = s.write_all(answer.as_bytes());
    let _ = s.write_all(b"|");
    let _ = s.write_all(rest);
    let _ = s.shutdown(Shutdown::Write);
}

fn cfg(listener_keys: &str, pool_keys: &str) -> String {
    format!(
        "[[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n{listener_keys}\n\
         [[pool]]\nname = \"p\"\n{pool_keys}\n[[pool.backend]]\naddr = \"{{B0}}\"\n"
    )
}

/// Sends `bytes` and FIN; returns everything the backend answered.
fn exchange(to: SocketAddr, bytes: &[u8]) -> (String, SocketAddr) {
    let mut s = connect(to);
    let local = s.local_addr().unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("an answer");
    (String::from_utf8_lossy(&out).into_owned(), local)
}

#[test]
fn send_proxy_v1_and_v2_tell_the_backend_the_client_address_before_its_bytes() {
    let backend = proxy_parsing_backend();
    for (version, expect) in [
        ("v1", "v1 PROXY TCP4 127.0.0.1 127.0.0.1 "),
        ("v2", "v2 tcp4 127.0.0.1:"),
    ] {
        let lb = start(&cfg("", &format!("send_proxy = \"{version}\"")), &[backend]);
        let to = addr(&lb);
        let (answer, client) = exchange(to, b"hello backend");
        assert!(answer.starts_with(expect), "{version}: {answer}");
        let (header, rest) = answer.split_once('|').unwrap();
        assert_eq!(
            rest, "hello backend",
            "{version}: bytes after the header unchanged"
        );
        let ports = match version {
            "v1" => format!("{} {}", client.port(), to.port()),
            _ => format!("{} 127.0.0.1:{}", client.port(), to.port()),
        };
        assert!(
            header.ends_with(&ports),
            "{version}: {header} lacks {ports}"
        );
    }
}

#[test]
fn accept_proxy_takes_the_header_off_and_its_address_is_the_client_downstream() {
    let backend = proxy_parsing_backend();
    let lb = start(
        &cfg("accept_proxy = true", "send_proxy = \"v1\""),
        &[backend],
    );
    let to = addr(&lb);
    let (answer, _) = exchange(to, b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 80\r\npayload");
    let (header, rest) = answer.split_once('|').unwrap();
    assert!(
        header.starts_with("v1 PROXY TCP4 10.1.2.3 127.0.0.1 5555 "),
        "the header ringlb sends names the address the hop gave: {header}"
    );
    assert_eq!(rest, "payload", "the client's own header is not relayed");
    // v2 from the hop.
    let mut v2 = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[192, 0, 2, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
    v2.extend_from_slice(b"after v2");
    let (answer, _) = exchange(to, &v2);
    assert!(
        answer.starts_with("v1 PROXY TCP4 192.0.2.7 127.0.0.1 8080 "),
        "{answer}"
    );
    assert!(answer.ends_with("|after v2"), "{answer}");
}

#[test]
fn accept_proxy_closes_a_client_without_a_valid_header_and_counts_it() {
    let backend = proxy_parsing_backend();
    let lb = start(&cfg("accept_proxy = true", ""), &[backend]);
    let mut s = connect(addr(&lb));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.is_empty(),
        "nothing reached a backend: {:?}",
        String::from_utf8_lossy(&out)
    );
    wait_for("the reject counted", || lb.stats().peek_rejects == 1);
}

/// Writes its one-byte id, then reads until EOF.
fn id_sink(id: u8) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&[id]);
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    a
}

#[test]
fn hash_on_a_session_header_keeps_each_session_on_one_backend() {
    let backends: Vec<SocketAddr> = (0..3).map(id_sink).collect();
    let text = format!(
        "[runtime]\nworkers = 2\n[[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
         [[pool]]\nname = \"p\"\nbalance = \"hash\"\nhash_key = \"header:x-session-id\"\n\
         hash_balance_factor = 10.0\n{}",
        (0..3)
            .map(|i| format!("[[pool.backend]]\naddr = \"{{B{i}}}\"\n"))
            .collect::<String>()
    );
    let lb = start(&text, &backends);
    let to = addr(&lb);
    let mut seen = std::collections::BTreeSet::new();
    for session in 0..12 {
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut s = connect(to);
            let req =
                format!("GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Session-Id: s{session}\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let mut id = [0u8; 1];
            s.read_exact(&mut id).unwrap();
            ids.push(id[0]);
        }
        assert!(
            ids.iter().all(|&i| i == ids[0]),
            "session {session} moved: {ids:?}"
        );
        seen.insert(ids[0]);
    }
    assert!(seen.len() >= 2, "12 sessions all on one backend: {seen:?}");
}

#[test]
fn past_peek_memory_max_a_new_client_waits_its_turn_to_be_read() {
    let text = "[runtime]\nworkers = 1\npeek_memory_max = \"2KiB\"\n\
                [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
                peek_max = \"2KiB\"\npeek_body_max = 0\n\
                [[listener.route]]\npath_prefix = \"/x\"\npool = \"p\"\n\
                [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{B0}\"\n";
    let lb = start(text, &[echo_backend()]);
    let to = addr(&lb);
    // Two clients hold 1,100 bytes each of an unfinished head: the worker's 2 KiB is spent.
    let head = format!("GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: {}", "p".repeat(1060));
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(to);
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    wait_for("both heads held", || {
        lb.stats().peek_bytes == 2 * head.len() as u64
    });
    let req = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut b = connect(to);
    b.write_all(req).unwrap();
    wait_for("the new client waiting for peek memory", || {
        lb.stats().peek_waits == 1
    });
    assert_eq!(
        lb.stats().peek_bytes,
        2 * head.len() as u64,
        "B was not read"
    );
    // One head completes: it is routed, its memory given back, and B is read and served.
    held[0].write_all(b"\r\n\r\n").unwrap();
    let mut back = vec![0u8; head.len() + 4];
    held[0].read_exact(&mut back).unwrap();
    assert_eq!(&back[..head.len()], head.as_bytes());
    let mut got = vec![0u8; req.len()];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, req);
    held.clear();
}
