//! `runtime.io = "auto"` for real: the `ringlb` binary started under a seccomp filter that
//! makes io_uring_setup fail with EPERM (as Docker's default profile does) says why once,
//! runs on epoll and relays bytes unchanged; with `io = "io_uring"` it refuses to start and
//! names the fix once; `ringlb check` says which driver `run` would use.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;

use common::process::{temp_dir, Proc};
use common::*;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// A filter that allows everything but io_uring_setup, which fails with EPERM.
fn no_io_uring() -> BpfProgram {
    let arch = TargetArch::try_from(std::env::consts::ARCH).expect("a seccompiler target");
    let rules = [(libc::SYS_io_uring_setup, vec![])].into_iter().collect();
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .expect("filter compiles")
}

/// Applies `filter` in the child between fork and exec (the program was built before the
/// fork: the hook only makes the two prctl calls, which is async-signal-safe).
fn confine(cmd: &mut Command, filter: BpfProgram) {
    cmd.env_remove("RINGLB_IO");
    // SAFETY: the hook runs in the forked child before exec and only calls prctl through
    // `apply_filter` on memory built before the fork; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            seccompiler::apply_filter(&filter).map_err(|e| std::io::Error::other(e.to_string()))
        });
    }
}

fn config(io: &str, backend: std::net::SocketAddr) -> String {
    format!(
        "[runtime]\nworkers = 2\n{io}\n[[listener]]\nname = \"test\"\nbind = \"127.0.0.1:0\"\n\
         pool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddr = \"{backend}\"\n"
    )
}

#[test]
fn auto_falls_back_to_epoll_under_a_seccomp_filter_and_relays_unchanged() {
    let backend = echo_backend();
    let ringlb = Proc::run_with("iofallback", &config("", backend), &[], |cmd| {
        confine(cmd, no_io_uring())
    });
    let started = ringlb.wait_line(&["ringlb started", "io=epoll"]);
    assert!(
        started.contains("io_uring cannot be used here"),
        "{started}"
    );
    let warned = ringlb.lines_with(&["io_uring unavailable; running on epoll"]);
    assert_eq!(warned.len(), 1, "one warning: {warned:?}");
    assert!(warned[0].contains("seccomp"), "{}", warned[0]);
    let addr = ringlb.listener("test");
    // 8 streams of 4 MiB each way at once, every byte checked.
    let streams: Vec<_> = (0..8u64)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(100 + i, 4 << 20);
                let mut s = TcpStream::connect(addr).expect("connect through ringlb");
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                let mut w = s.try_clone().unwrap();
                let sent = hash(&data);
                let writer = thread::spawn(move || {
                    w.write_all(&data).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let (got, len) = read_hash(&mut s).expect("echo");
                writer.join().unwrap();
                assert_eq!((got, len), (sent, 4 << 20), "stream {i} came back changed");
            })
        })
        .collect();
    for s in streams {
        s.join().unwrap();
    }
}

#[test]
fn io_uring_insisted_on_under_the_filter_fails_and_names_the_fix_once() {
    let backend = echo_backend();
    let mut ringlb = Proc::run_with(
        "iouringonly",
        &config("io = \"io_uring\"", backend),
        &[],
        |cmd| confine(cmd, no_io_uring()),
    );
    let status = ringlb.wait_exit(DEADLINE).expect("ringlb exits");
    assert_eq!(status.code(), Some(1));
    let error = ringlb.wait_line(&["error: cannot start ringlb"]);
    assert_eq!(
        error.matches("EPERM").count(),
        1,
        "the reason once: {error}"
    );
    assert!(error.contains("seccomp"), "{error}");
}

#[test]
fn check_says_which_driver_run_would_use() {
    let dir = temp_dir("iocheck");
    let path = dir.join("ringlb.toml");
    std::fs::write(&path, config("", "127.0.0.1:9".parse().unwrap())).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringlb"));
    cmd.args(["check", "-c"]).arg(&path);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    confine(&mut cmd, no_io_uring());
    let out = cmd.output().expect("ringlb check runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let io = stdout.lines().last().unwrap_or_default();
    assert!(
        io.starts_with(
            "io: epoll (auto: io_uring cannot be used here: io_uring_setup was refused (EPERM)"
        ),
        "{stdout}"
    );
}
