//! Shared pieces of the integration tests: the balancer started in-process on 127.0.0.1:0 and
//! small thread-per-connection backends (echo, byte source/sink, "hold and say who I am",
//! refusing, black hole). Every wait is on a condition with a deadline, never a bare sleep.
#![allow(dead_code)]

pub mod config_check;
pub mod dns_server;
pub mod engines;
pub mod process;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringlb::config;
use ringlb::engine::{Clock, Server};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// A config with two workers, listener `test` and pool `p` with `pool_keys`, and one backend
/// per entry of `backend_keys` (addresses `{B0}`, `{B1}`, ... for [`start`] to fill in).
pub fn pool_config(pool_keys: &str, backend_keys: &[&str]) -> String {
    let mut t = format!(
        "[runtime]\nworkers = 2\n[[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\n\
         pool = \"p\"\n[[pool]]\nname = \"p\"\n{pool_keys}\n"
    );
    for (i, keys) in backend_keys.iter().enumerate() {
        t += &format!("[[pool.backend]]\naddr = \"{{B{i}}}\"\n{keys}\n");
    }
    t
}

/// Starts ringlb from a config whose `{B0}`, `{B1}`, ... are replaced by `backends`.
pub fn start(toml: &str, backends: &[SocketAddr]) -> Server {
    start_with(toml, backends, Clock::system())
}

/// [`start`] with the engine's timers on `clock` (a manual clock makes hour-long timeouts
/// testable in milliseconds).
pub fn start_with(toml: &str, backends: &[SocketAddr], clock: Clock) -> Server {
    let mut text = toml.to_string();
    for (i, b) in backends.iter().enumerate() {
        text = text.replace(&format!("{{B{i}}}"), &b.to_string());
    }
    let cfg = config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    Server::start_with(&cfg, clock).expect("server starts")
}

/// One echo round trip on `s`: proves its worker ran loop turns (and so handled everything
/// that happened before, such as a clock advance) since the call began.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, msg);
}

/// True if the read ended with a reset, false if with a clean EOF; panics on anything else
/// (data is drained first).
pub fn ends_with_reset(s: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("stream neither reset nor closed: {e}"),
        }
    }
}

pub fn addr(server: &Server) -> SocketAddr {
    server.listener_addr("test").expect("listener named test")
}

/// Polls `cond` until it holds or the deadline passes (then panics with `what`).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to ringlb");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

fn spawn_acceptor(listener: TcpListener, handle: impl Fn(TcpStream) + Send + Sync + 'static) {
    let handle = Arc::new(handle);
    thread::spawn(move || {
        for stream in listener.incoming() {
            // Out of descriptors (the EMFILE tests lower the limit process-wide): the client
            // waits in the backlog until one frees, as it would with a real server.
            let Ok(stream) = stream else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = stream.set_read_timeout(Some(DEADLINE));
            let handle = handle.clone();
            thread::spawn(move || handle(stream));
        }
    });
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind backend")
}

/// Echoes everything; on EOF finishes writing and shuts down its write side.
pub fn echo_backend() -> SocketAddr {
    let l = bind();
    let a = l.local_addr().unwrap();
    spawn_acceptor(l, |mut s| {
        let mut r = s.try_clone().unwrap();
        let _ = io::copy(&mut r, &mut s);
        let _ = s.shutdown(Shutdown::Write);
    });
    a
}

/// A backend that, per connection, writes its one-byte `id`, then echoes every byte back;
/// on the client's EOF it finishes writing and shuts its write side.
pub fn id_echo(id: u8) -> SocketAddr {
    let l = bind();
    let a = l.local_addr().unwrap();
    spawn_acceptor(l, move |mut s| {
        let _ = s.write_all(&[id]);
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s.shutdown(Shutdown::Write);
    });
    a
}

/// A backend that, per connection, writes its one-byte `id`, then holds the connection until
/// the client closes it. Counts connections currently open.
pub struct HoldBackend {
    pub addr: SocketAddr,
    pub open: Arc<AtomicUsize>,
    /// Connections accepted in all.
    pub accepted: Arc<AtomicUsize>,
}

pub fn hold_backend(id: u8) -> HoldBackend {
    let l = bind();
    let addr = l.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (o, a) = (open.clone(), accepted.clone());
    spawn_acceptor(l, move |mut s| {
        a.fetch_add(1, Ordering::SeqCst);
        o.fetch_add(1, Ordering::SeqCst);
        let _ = s.write_all(&[id]);
        let mut buf = [0u8; 64];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        o.fetch_sub(1, Ordering::SeqCst);
    });
    HoldBackend {
        addr,
        open,
        accepted,
    }
}

/// Opens a stream through ringlb to a [`hold_backend`] and returns it with the backend id.
pub fn open_held(addr: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(addr);
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

/// A port with a bound socket that does not listen: connects to it are refused.
pub fn refusing_backend() -> (socket2::Socket, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let a = s.local_addr().unwrap().as_socket().unwrap();
    (s, a)
}

/// A listener whose accept queue is full, so further SYNs are dropped: a real black hole on
/// loopback. Keep the returned values alive for as long as the hole is needed.
pub fn black_hole() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(0).unwrap();
    let a = s.local_addr().unwrap().as_socket().unwrap();
    // With backlog 0 the queue holds one connection; fill it and never accept.
    let fillers = vec![TcpStream::connect(a).unwrap()];
    (s, fillers, a)
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn hash(bytes: &[u8]) -> blake3::Hash {
    blake3::hash(bytes)
}

/// Reads to EOF, hashing, and returns (hash, length).
pub fn read_hash(r: &mut impl Read) -> io::Result<(blake3::Hash, u64)> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf)? {
            0 => return Ok((h.finalize(), n)),
            k => {
                h.update(&buf[..k]);
                n += k as u64;
            }
        }
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Active counts of every backend of pool 0, in config order.
pub fn active(server: &Server) -> Vec<u32> {
    server.table().load().snapshot(ringlb::clock::now_ms())[0]
        .backends
        .iter()
        .map(|b| b.active)
        .collect()
}

pub type Shared<T> = Arc<Mutex<T>>;
