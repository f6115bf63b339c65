//! Accepting while the process is out of descriptors must back off, not spin: the pending
//! clients stay in the listen backlog and are served once descriptors are free again. Own test
//! binary: it changes RLIMIT_NOFILE process-wide. (io_uring takes the limit in force when an
//! accept is submitted, so the soft limit is lowered before ringlb starts, then restored.)

mod common;

use std::fs::File;
use std::time::{Duration, Instant};

use common::*;

const CFG: &str = "[runtime]\nworkers = 1\nmax_connections = 100000\n\
                   [[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\npool = \"p\"\n\
                   [[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{B0}\"\n";

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    r
}

fn set(r: libc::rlimit) {
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    assert_eq!(
        rc,
        0,
        "setrlimit({}, {}): {}",
        r.rlim_cur,
        r.rlim_max,
        std::io::Error::last_os_error()
    );
}

#[test]
fn accept_at_emfile_backs_off_and_serves_the_clients_afterwards() {
    let backend = echo_backend();
    let old = nofile();
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let low = open_now + 256;
    set(libc::rlimit {
        rlim_cur: low,
        rlim_max: old.rlim_max,
    });
    let server = start(CFG, &[backend]);
    let to = addr(&server);
    let clients: Vec<socket2::Socket> = (0..8)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    // Take every descriptor left, then connect: ringlb's accepts meet EMFILE.
    let mut fillers = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        fillers.push(f);
    }
    for c in &clients {
        c.connect(&to.into()).unwrap();
    }
    let started = Instant::now();
    while server.stats().accept_errors == 0 && started.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(2));
    }
    let first = server.stats().accept_errors;
    // Measures a rate, so it waits a fixed time: a spinning accept fails thousands of times a
    // second, one that backs off 100 ms about ten.
    std::thread::sleep(Duration::from_secs(1));
    let in_a_second = server.stats().accept_errors - first;
    drop(fillers);
    set(old);
    assert!(first >= 1, "accept never failed: {:?}", server.stats());
    assert!(
        in_a_second <= 20,
        "{in_a_second} failed accepts in one second: accept spins at EMFILE"
    );
    for c in clients {
        let mut s: std::net::TcpStream = c.into();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        round_trip(&mut s, b"served after all");
    }
    assert_eq!(server.stats().accepted, 8);
}
