//! What the `ringlb` binary tells an operator when it cannot start: one line, the exact
//! reason once, and exit code 2 for anything the operator must fix (the config, or an address
//! it names that cannot be bound). Real processes, real sockets on 127.0.0.1; every wait has a
//! deadline, and running past it is a failure.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{connect, echo_backend, round_trip, DEADLINE};
use ringlb::engine::Server;

/// A config file that deletes itself.
struct Config(PathBuf);

impl Config {
    fn new(text: &str) -> Config {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("ringlb-msg-{}-{n}.toml", std::process::id()));
        let mut f = std::fs::File::create(&path).expect("create config");
        f.write_all(text.as_bytes()).expect("write config");
        Config(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Listener `api` on `bind` (line 5: `bind` is at 5:8) in front of pool `gpu`; `extra` goes
/// after the second backend (from line 14 on).
fn config(bind: &str, [b1, b2]: [SocketAddr; 2], extra: &str) -> String {
    format!(
        "[runtime]\nworkers = 2\n[[listener]]\nname = \"api\"\nbind = \"{bind}\"\npool = \"gpu\"\n\
         [[pool]]\nname = \"gpu\"\n[[pool.backend]]\naddr = \"{b1}\"\n\
         [[pool.backend]]\naddr = \"{b2}\"\n\n{extra}\n"
    )
}

/// Two echo backends.
fn backends() -> [SocketAddr; 2] {
    [echo_backend(), echo_backend()]
}

/// Runs `ringlb CMD -c FILE` with only errors logged, and returns its output; a process that
/// has not exited by the deadline is killed and fails the test.
fn ringlb(cmd: &str, file: &Config) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["--log", "error", cmd, "-c", &file.path()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringlb");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("ringlb output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("ringlb {cmd} did not exit within {DEADLINE:?}");
        }
    }
}

/// Asserts exit code `code` and exactly `stderr` (one line).
fn assert_exit(out: &Output, code: i32, stderr: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, format!("{stderr}\n"), "stderr");
    assert_eq!(out.status.code(), Some(code), "{err}");
}

#[test]
fn a_port_in_use_is_one_line_and_exit_2_from_check_and_run() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let f = Config::new(&config(&format!("127.0.0.1:{port}"), backends(), ""));
    let reason = "another process listens there (address in use)";
    assert_exit(
        &ringlb("check", &f),
        2,
        &format!(
            "error: {}:5:8: listener \"api\": cannot bind 127.0.0.1:{port}: {reason}",
            f.path()
        ),
    );
    assert_exit(
        &ringlb("run", &f),
        2,
        &format!(
            "error: cannot start ringlb: listener \"api\": cannot listen on 127.0.0.1:{port}: \
             {reason}"
        ),
    );
}

#[test]
fn check_tries_binds_run_could_not_open() {
    // TEST-NET-1 (RFC 5737): no host has it, so the bind fails even as root.
    let f = Config::new(&config("192.0.2.1:8080", backends(), ""));
    let reason = "no interface of this host has that address (address not available)";
    assert_exit(
        &ringlb("check", &f),
        2,
        &format!(
            "error: {}:5:8: listener \"api\": cannot bind 192.0.2.1:8080: {reason}",
            f.path()
        ),
    );
    assert_exit(
        &ringlb("run", &f),
        2,
        &format!("error: cannot start ringlb: listener \"api\": cannot listen on 192.0.2.1:8080: {reason}"),
    );

    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin = holder.local_addr().expect("addr");
    let f = Config::new(&config(
        "127.0.0.1:0",
        backends(),
        &format!("[admin]\nbind = \"{admin}\""),
    ));
    assert_exit(
        &ringlb("check", &f),
        2,
        &format!(
            "error: {}:15:8: admin: cannot bind {admin}: another process listens there \
             (address in use)",
            f.path()
        ),
    );
    assert_exit(
        &ringlb("run", &f),
        2,
        &format!("error: admin API: cannot listen on {admin}: another process listens there (address in use)"),
    );
}

#[test]
fn port_70000_is_out_of_range_not_a_host_name() {
    let f = Config::new(&config("127.0.0.1:70000", backends(), ""));
    for cmd in ["check", "run"] {
        assert_exit(
            &ringlb(cmd, &f),
            2,
            &format!(
                "error: {}:5:8: listener \"api\": `bind` expected IP:port such as \
                 \"127.0.0.1:8080\", got \"127.0.0.1:70000\": port 70000 is out of range \
                 (at most 65535)",
                f.path()
            ),
        );
    }
}

#[test]
fn a_number_too_large_for_toml_names_its_backend_and_range() {
    let f = Config::new(&config(
        "127.0.0.1:0",
        backends(),
        "weight = 99999999999999999999",
    ));
    for cmd in ["check", "run"] {
        assert_exit(
            &ringlb(cmd, &f),
            2,
            &format!(
                "error: {}:14:10: pool \"gpu\" backend 2: `weight` must be at most 1000000, \
                 got 99999999999999999999",
                f.path()
            ),
        );
    }
}

#[test]
fn a_second_ringlb_on_the_same_port_is_refused_and_the_first_keeps_serving() {
    let backend = backends();
    let first_cfg = ringlb::config::parse(&config("127.0.0.1:0", backend, ""), "first.toml")
        .expect("first config");
    let first = Server::start(&first_cfg).expect("first ringlb starts");
    let addr = first.listener_addr("api").expect("listener api");
    let mut before = connect(addr);
    round_trip(&mut before, b"before");

    let f = Config::new(&config(&addr.to_string(), backend, ""));
    assert_exit(
        &ringlb("run", &f),
        2,
        &format!(
            "error: cannot start ringlb: listener \"api\": cannot listen on {addr}: another \
             process listens there (address in use)"
        ),
    );
    // `check` is the dry run of a reload of the running process: a warning, not an error.
    let out = ringlb("check", &f);
    assert_exit(
        &out,
        0,
        &format!(
            "warning: listener \"api\": {addr} is held by a SO_REUSEPORT socket of this user \
             (a running ringlb?): `ringlb run` would refuse it, a reload of that process \
             would not"
        ),
    );

    // The first still serves its old stream and every new one (none went to the second).
    round_trip(&mut before, b"after");
    for i in 0..16u8 {
        let mut s = connect(addr);
        round_trip(&mut s, &[b'n', i]);
    }
    assert_eq!(
        first.stats().accepted,
        17,
        "every client reached the first ringlb"
    );
    first.shutdown().expect("first ringlb stops cleanly");
}

#[test]
fn check_no_bind_checks_only_the_file() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr");
    let f = Config::new(&config(&addr.to_string(), backends(), ""));
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["check", "--no-bind", "-c", &f.path()])
        .output()
        .expect("ringlb check");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{}: ok", f.path())));
}
