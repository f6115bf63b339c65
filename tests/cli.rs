//! The `ringlb` binary's contract with operators: `check` prints a summary or the error with
//! file:line:col and exits 2; `run` refuses a bad config with exit 2 and starts nothing.

use std::io::Write;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringlb"))
}

fn write_config(text: &str) -> tempfile_path::TempPath {
    tempfile_path::TempPath::new(text)
}

/// A tiny self-deleting temp file (no extra crate needed).
mod tempfile_path {
    use super::*;
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn new(text: &str) -> TempPath {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p =
                std::env::temp_dir().join(format!("ringlb-cli-{}-{n}.toml", std::process::id()));
            let mut f = std::fs::File::create(&p).unwrap();
            f.write_all(text.as_bytes()).unwrap();
            TempPath(p)
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

const GOOD: &str = r#"
[[listener]]
name = "llm"
bind = "127.0.0.1:0"
pool = "gpu"

[[pool]]
name = "gpu"

[[pool.backend]]
addr = "127.0.0.1:9001"
"#;

#[test]
fn check_accepts_the_shipped_example() {
    // --no-bind: the example listens on 127.0.0.1:8080, which the demo or anything else on the
    // test host may hold; the binds are tried in tests/messages.rs.
    let out = bin()
        .args([
            "check",
            "--no-bind",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/ringlb.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gpu"), "{stdout}");
}

#[test]
fn check_prints_a_summary() {
    let f = write_config(GOOD);
    let out = bin().arg("check").arg("-c").arg(&f.0).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("127.0.0.1:9001"));
    // Which driver `run` would use here, and why (this host has io_uring, or the test runs
    // with RINGLB_IO=epoll).
    let io = stdout.lines().last().unwrap_or_default();
    assert!(
        io.starts_with("io: io_uring (") || io.starts_with("io: epoll ("),
        "{stdout}"
    );
}

#[test]
fn check_names_a_bad_io_override_in_its_io_line() {
    let f = write_config(GOOD);
    let out = bin()
        .arg("check")
        .arg("-c")
        .arg(&f.0)
        .env("RINGLB_IO", "uring")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let io = stdout.lines().last().unwrap_or_default();
    assert!(
        io.starts_with("io: none, `ringlb run` would refuse to start: ")
            && io.contains("\"uring\""),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("uring"),
        "{stderr}"
    );
}

#[test]
fn every_kind_of_bad_config_exits_2_with_its_location() {
    let cases: &[(&str, &str, &str)] = &[
        (
            &GOOD.replace("pool = \"gpu\"", "pool = \"cpu\""),
            ":5:8",
            "cpu",
        ),
        (
            &GOOD.replace("addr = \"127.0.0.1:9001\"", "addr = \"localhost\""),
            ":11:8",
            "IP:port",
        ),
        (&format!("{GOOD}weight = 0\n"), ":12:10", "weight"),
        (&format!("{GOOD}colour = \"red\"\n"), ":12:1", "colour"),
        (
            &GOOD.replace(
                "name = \"gpu\"",
                "name = \"gpu\"\nconnect_timeout = \"3 parsecs\"",
            ),
            ":9:19",
            "connect_timeout",
        ),
        (
            &GOOD.replace(
                "name = \"gpu\"",
                "name = \"gpu\"\n[pool.engine_metrics]\nflavor = \"triton\"",
            ),
            ":10:10",
            "flavor",
        ),
        ("[[listener]\nname=", ":1:", ""),
    ];
    for (text, location, key) in cases {
        let f = write_config(text);
        for cmd in ["check", "run"] {
            let out = bin().arg(cmd).arg("-c").arg(&f.0).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
            assert!(
                err.contains(&format!("{}{location}", f.0.display())),
                "{cmd}: {err}"
            );
            assert!(err.contains(key), "{cmd}: {err}");
        }
    }
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let out = bin()
        .args(["check", "-c", "/nonexistent/ringlb.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ringlb.toml"));
}
