//! Hand-over of the real binary to a new process (`ringlb run --take-over`): 200 live streams
//! on the old process all finish byte for byte while it drains, the new process serves every
//! new client on the same port and counts the old streams in its picks (least connections
//! sends its next streams to the other backend); a listener the new config drops is drained
//! by the old process. A take-over that cannot happen fails with a clear message and exit
//! code and leaves the old process as it was.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use common::process::{field, temp_dir, Proc};
use common::*;
use nix::sys::signal::Signal;

/// `workers`, the hand-over socket, an admin API, the listeners (name, bind) and pool `p`
/// (least connections) over `backends`.
fn config(
    workers: usize,
    socket: &Path,
    listeners: &[(&str, String)],
    backends: &[SocketAddr],
) -> String {
    let mut t = format!(
        "[runtime]\nworkers = {workers}\nshutdown_timeout = \"60s\"\n\
         handover_socket = \"{}\"\n[admin]\nbind = \"127.0.0.1:0\"\n",
        socket.display()
    );
    for (name, bind) in listeners {
        t += &format!("[[listener]]\nname = \"{name}\"\nbind = \"{bind}\"\npool = \"p\"\n");
    }
    t += "[[pool]]\nname = \"p\"\nbalance = \"least_connections\"\n";
    for b in backends {
        t += &format!("[[pool.backend]]\naddr = \"{b}\"\n");
    }
    t
}

fn open(to: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(to);
    let mut id = [0u8; 1];
    s.read_exact(&mut id).expect("backend id");
    (s, id[0])
}

/// Sends `data` and FIN, and checks the echo byte for byte and a clean end.
fn finish(mut s: TcpStream, data: Vec<u8>) {
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let got = read_hash(&mut s).expect("the stream ends cleanly, not cut");
    writer.join().unwrap();
    assert_eq!(got, (hash(&data), data.len() as u64));
}

fn admin_addr(p: &Proc) -> SocketAddr {
    field(&p.wait_line(&["admin API listening"]), "addr")
        .parse()
        .unwrap()
}

/// The value of the metric line starting with `prefix` in `GET /metrics`.
fn metric(admin: SocketAddr, prefix: &str) -> f64 {
    let mut s = connect(admin);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{body}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn take_over_with_200_live_streams_cuts_none_and_counts_them_in_the_new_picks() {
    let (a, b) = (id_echo(0), id_echo(1));
    let dir = temp_dir("handover-sock");
    let socket = dir.join("handover.sock");
    let any = "127.0.0.1:0".to_string();
    let old_cfg = config(2, &socket, &[("test", any.clone()), ("two", any)], &[a]);
    let mut old = Proc::run("handover-old", &old_cfg, &[]);
    let (to, two) = (old.listener("test"), old.listener("two"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the hand-over socket is for this user only"
    );
    let live: Vec<(TcpStream, Vec<u8>)> = (0..200u64)
        .map(|i| {
            let (mut s, id) = open(to);
            assert_eq!(id, 0, "the old process knows only backend A");
            let data = pattern(i, 48 * 1024 + i as usize);
            round_trip(&mut s, &data[..100]);
            (s, data)
        })
        .collect();

    // New clients keep coming all through the hand-over: each must be served by one process
    // or the other, none refused or reset.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut served = 0u32;
            while !stop.load(Ordering::Acquire) {
                let (mut s, _) = open(to);
                round_trip(&mut s, b"arriving during the hand-over");
                s.shutdown(Shutdown::Write).unwrap();
                assert!(
                    !ends_with_reset(&mut s),
                    "a client arriving during the hand-over"
                );
                served += 1;
            }
            served
        })
    };

    // The new process: the old one's port (read from its log), one worker more, backend B
    // too, and no listener "two".
    let new_cfg = config(3, &socket, &[("test", to.to_string())], &[a, b]);
    let new = Proc::run("handover-new", &new_cfg, &["--take-over"]);
    let took = new.wait_line(&["hand-over: took"]);
    assert_eq!(
        (field(&took, "sockets"), field(&took, "bound")),
        ("2".into(), "1".into()),
        "{took}"
    );
    assert_eq!(field(&took, "pid"), old.child.id().to_string(), "{took}");
    let (taken_at, taken) = old.wait_line_from(0, &["hand-over: taken"]);
    let taken_time = Instant::now();
    assert_eq!(field(&taken, "pid"), new.child.id().to_string(), "{taken}");
    let draining = old.wait_line(&["hand-over: draining streams"]);
    let streams: u32 = field(&draining, "streams").parse().unwrap();
    assert!(
        streams >= 200,
        "the 200 old streams (and churn in flight): {draining}"
    );
    // After taken, every old worker closes both its sockets: "test" handed over (its queue is
    // the new process's), "two" drained (its queue taken, then the port refuses).
    let mut from = taken_at;
    for _ in 0..4 {
        from = old.wait_line_from(from + 1, &["stopped accepting"]).0;
    }
    assert_eq!(
        old.lines_with(&["stopped accepting", "handed_over=true"])
            .len(),
        2
    );
    assert!(refused(two), "a listener the new config dropped is closed");
    new.listener("test");
    // A few more clients after the switch, then the churn stops.
    let after = new.lines().len();
    wait_for("clients served by the new process", || {
        new.lines()[after..]
            .iter()
            .filter(|l| l.contains("ringlb::access"))
            .count()
            >= 20
    });
    stop.store(true, Ordering::Release);
    let churned = churn
        .join()
        .expect("every client during the hand-over was served");

    // New clients: served by the new process (B exists only there), and all on B since
    // least connections counts the old process's 200 streams on A.
    let new_admin = admin_addr(&new);
    let foreign = format!("ringlb_backend_handover_active{{pool=\"p\",backend=\"{a}\"}}");
    wait_for("the old process reports its 200 streams on A", || {
        metric(new_admin, &foreign) == 200.0
    });
    let fresh: Vec<(TcpStream, Vec<u8>)> = (0..20u64)
        .map(|i| {
            let (mut s, id) = open(to);
            assert_eq!(
                id, 1,
                "stream {i}: the old streams on A count in the new picks"
            );
            let data = pattern(1000 + i, 4096);
            round_trip(&mut s, &data[..10]);
            (s, data)
        })
        .collect();
    let own = format!("ringlb_backend_active_streams{{pool=\"p\",backend=\"{a}\"}}");
    assert_eq!(
        metric(new_admin, &own),
        0.0,
        "foreign streams never leak into our own count"
    );

    // Every old stream finishes byte for byte; the old process then exits 0 by itself.
    let done: Vec<_> = live
        .into_iter()
        .map(|(s, data)| thread::spawn(move || finish(s, data[100..].to_vec())))
        .collect();
    for d in done {
        d.join().unwrap();
    }
    let status = old
        .wait_exit(DEADLINE)
        .expect("the old process exits once drained");
    let drained_in = taken_time.elapsed();
    assert!(status.success(), "{status}");
    let old_fin = old
        .lines_with(&["ringlb::access", "reason=client_fin"])
        .len();
    assert_eq!(
        old_fin,
        old.lines_with(&["ringlb::access"]).len(),
        "every stream of the old process ended cleanly"
    );
    assert!(
        old_fin >= 200,
        "the 200 old streams, and the churn it served"
    );
    assert!(old.lines_with(&["reason=shutdown"]).is_empty(), "none cut");
    assert!(old.lines_with(&["reason=client_reset"]).is_empty());
    eprintln!(
        "hand-over: 200 live streams, 0 cut; {churned} clients arriving during it, all served; \
         the old process drained and exited {drained_in:?} after taken"
    );

    // Its counts are cleared once it is gone: A is the least loaded again.
    new.wait_line(&["the old process is gone"]);
    assert_eq!(metric(new_admin, &foreign), 0.0);
    let (mut s, id) = open(to);
    assert_eq!(id, 0, "with the old streams gone, A has none and B has 20");
    round_trip(&mut s, b"after the old process left");
    for (s, data) in fresh {
        finish(s, data[10..].to_vec());
    }
    assert!(
        socket.exists(),
        "the new process serves the hand-over socket now"
    );
    drop(new);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_take_over_that_cannot_happen_fails_clearly_and_leaves_the_old_process_serving() {
    let a = id_echo(0);
    let dir = temp_dir("handover-fail");
    let socket = dir.join("handover.sock");
    let mut old = Proc::run(
        "handover-keep",
        &config(2, &socket, &[("test", "127.0.0.1:0".into())], &[a]),
        &[],
    );
    let to = old.listener("test");
    let (mut s, _) = open(to);
    round_trip(&mut s, b"before");
    let listeners = [("test", to.to_string())];

    // No socket at the path the new config names: exit 1, nothing taken.
    let missing = config(2, &dir.join("missing.sock"), &listeners, &[a]);
    let mut new = Proc::run("handover-missing", &missing, &["--take-over"]);
    let status = new.wait_exit(DEADLINE).expect("exits at once");
    assert_eq!(status.code(), Some(1), "{status}");
    let error = new.wait_line(&["error: cannot take over through"]);
    assert!(error.contains("missing.sock: no such socket"), "{error}");

    // --take-over without `handover_socket`: a config problem, exit 2.
    let without = config(2, &socket, &listeners, &[a])
        .replace(&format!("handover_socket = \"{}\"\n", socket.display()), "");
    let mut new = Proc::run("handover-unset", &without, &["--take-over"]);
    assert_eq!(new.wait_exit(DEADLINE).and_then(|s| s.code()), Some(2));
    new.wait_line(&["--take-over needs `runtime.handover_socket`"]);

    // A plain start naming the live socket: refused, exit 2 (it must be a take-over).
    let beside = config(2, &socket, &[("test", "127.0.0.1:0".into())], &[a]);
    let mut new = Proc::run("handover-beside", &beside, &[]);
    assert_eq!(new.wait_exit(DEADLINE).and_then(|s| s.code()), Some(2));
    new.wait_line(&["a running ringlb serves it"]);

    // The old process never noticed: same stream, new clients, its socket still there.
    round_trip(&mut s, b"still relaying");
    let (mut again, id) = open(to);
    assert_eq!(id, 0);
    round_trip(&mut again, b"still accepting");
    assert!(
        old.lines_with(&["hand-over"]).is_empty(),
        "{:?}",
        old.lines()
    );
    assert!(socket.exists());
    drop((s, again));
    old.signal(Signal::SIGTERM);
    assert!(old.wait_exit(DEADLINE).expect("exits").success());
    assert!(!socket.exists(), "its socket file is removed at exit");

    // --take-over-if-running with nobody to take over from: a plain start.
    let fresh = config(2, &socket, &[("test", "127.0.0.1:0".into())], &[a]);
    let p = Proc::run("handover-if", &fresh, &["--take-over-if-running"]);
    p.wait_line(&["hand-over socket checked", "live=false"]);
    let (mut s, id) = open(p.listener("test"));
    assert_eq!(id, 0);
    round_trip(&mut s, b"started fresh");
    assert!(socket.exists(), "and serves the hand-over socket");
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}
