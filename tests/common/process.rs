//! The real `ringlb` binary as a child process: config written to a temp dir, stderr followed
//! line by line (colour codes stripped) so tests wait for log lines instead of sleeping,
//! signals sent with nix. Dropping a [`Proc`] kills the child and removes its directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use ringlb::tools::soak::strip_ansi;

use super::DEADLINE;

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
}

pub struct Proc {
    pub child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    log: Arc<(Mutex<Log>, Condvar)>,
}

/// A fresh directory for one test's files.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringlb-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Proc {
    /// Writes `config` and starts `ringlb run -c FILE` (extra `args` after), log at `info`.
    pub fn run(tag: &str, config: &str, args: &[&str]) -> Proc {
        Self::run_with(tag, config, args, |_| {})
    }

    /// [`Proc::run`] with the command adjusted by `setup` first (environment, a pre-exec hook).
    pub fn run_with(
        tag: &str,
        config: &str,
        args: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Proc {
        let dir = temp_dir(tag);
        let path = dir.join("ringlb.toml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringlb"));
        cmd.args(["run", "-c"])
            .arg(&path)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        setup(&mut cmd);
        let mut child = cmd.spawn().expect("ringlb runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let follow = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*follow;
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .lines
                    .push(strip_ansi(&line));
                cv.notify_all();
            }
            let (m, cv) = &*follow;
            m.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            cv.notify_all();
        });
        Proc {
            child,
            dir,
            config: path,
            log,
        }
    }

    /// Waits (up to the test deadline) for a log line containing every one of `parts`, from
    /// line `from` on; returns its index and text. Panics if ringlb exits or the deadline passes.
    pub fn wait_line_from(&self, from: usize, parts: &[&str]) -> (usize, String) {
        let until = Instant::now() + DEADLINE;
        let (m, cv) = &*self.log;
        let mut log = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((i, l)) = log
                .lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| parts.iter().all(|p| l.contains(p)))
            {
                return (i, l.clone());
            }
            let now = Instant::now();
            assert!(
                !log.closed && now < until,
                "no log line with {parts:?}; log:\n{}",
                log.lines.join("\n")
            );
            log = cv.wait_timeout(log, until - now).unwrap().0;
        }
    }

    pub fn wait_line(&self, parts: &[&str]) -> String {
        self.wait_line_from(0, parts).1
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.log
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .clone()
    }

    /// Lines logged so far that contain every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .collect()
    }

    /// The address listener `name` listens on (from its `listening` line).
    pub fn listener(&self, name: &str) -> SocketAddr {
        let line = self.wait_line(&["listening", &format!("listener={name} ")]);
        field(&line, "addr").parse().unwrap()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the child to exit (up to `within`); None if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The value of `key=VALUE` in a log line (up to the next space; quotes removed).
pub fn field(line: &str, key: &str) -> String {
    let pat = format!("{key}=");
    let rest = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&pat))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    rest.trim_matches('"').to_string()
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
