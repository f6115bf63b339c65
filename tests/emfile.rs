//! A client accepted while no backend socket can be opened (EMFILE) waits for a descriptor
//! (up to its pool's connect timeout) and is served once one frees; it is never left in the
//! slab forever. Own test binary: it changes RLIMIT_NOFILE process-wide (so its tests run one
//! after the other, under a lock).
mod common;

use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;

const CFG: &str = r#"
[runtime]
workers = 1
[[listener]]
name = "test"
bind = "127.0.0.1:0"
pool = "p"
[[pool]]
name = "p"
[[pool.backend]]
addr = "{B0}"
"#;

fn set_nofile(soft: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    let old = r.rlim_cur;
    r.rlim_cur = soft;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    old
}

static LIMIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lowest free descriptor after the next one: with the limit at it + 1, the test's next
/// socket and ringlb's accept still fit, and the backend socket() after them fails.
fn limit_for_one_accept() -> u64 {
    let probe = std::fs::File::open("/dev/null").unwrap();
    let probe2 = std::fs::File::open("/dev/null").unwrap();
    let b = probe2.as_raw_fd() as u64;
    drop((probe, probe2));
    b + 1
}

/// An echo backend that needs no descriptor beyond the accepted one and outlives EMFILE (it
/// shares the lowered limit).
fn frugal_echo() -> std::net::SocketAddr {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || loop {
        let Ok((mut s, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    });
    a
}

#[test]
fn a_client_that_found_no_descriptor_for_its_backend_is_served_once_one_frees() {
    let _one = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    let backend = frugal_echo();
    let server = start(CFG, &[backend]);
    let to = addr(&server);
    // The limit leaves room for exactly the accept, unless another thread frees or takes a
    // descriptor meanwhile: then the socket opens at once and the attempt is repeated.
    for _ in 0..10 {
        let (accepted, waits) = (server.stats().accepted, server.stats().socket_waits);
        let old = set_nofile(limit_for_one_accept());
        let s = std::net::TcpStream::connect(to);
        let end = std::time::Instant::now() + Duration::from_millis(500);
        while server.stats().socket_waits == waits && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        set_nofile(old);
        let Ok(mut s) = s else { continue };
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        // Served either way: at once, or once a descriptor was free.
        round_trip(&mut s, b"served once a descriptor was free");
        assert_eq!(server.stats().accepted, accepted + 1);
        if server.stats().socket_waits > waits {
            return;
        }
    }
    panic!("the backend socket never met EMFILE in 10 attempts");
}

#[test]
fn client_is_closed_when_the_backend_socket_cannot_be_opened() {
    let _one = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    // A refusing backend, not an in-process one: an in-process acceptor would itself meet the
    // lowered limit, and a stream parked on it would never end. Should ringlb's backend socket
    // open after all (a lower descriptor came free), the refused connect closes the client too.
    let (_refuser, refused) = refusing_backend();
    let server = start(CFG, &[refused]);
    let to = addr(&server);
    let old = set_nofile(limit_for_one_accept());
    let s = std::net::TcpStream::connect(to);
    // Wait until ringlb has accepted (and failed to open the backend socket).
    let accepted = (|| {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if server.stats().accepted == 1 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    })();
    set_nofile(old);
    let mut s = s.expect("client connect");
    assert!(accepted, "ringlb accepted the client");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 8];
    let r = s.read(&mut buf);
    assert!(
        !matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut),
        "client never closed: {r:?} (connections in slab: {})",
        server.stats().connections
    );
    wait_for("slot freed", || server.stats().connections == 0);
}
