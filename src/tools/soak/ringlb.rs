//! The ringlb process under test: its config (least_connections over the soak's backends, the
//! listener on 127.0.0.1 port 0), the child started with `ringlb run -c FILE`, its log kept in
//! the work directory, the listen address read from its `listening` log line (ringlb resolves
//! port 0 itself, so no port is guessed), readiness by a connect that is accepted, and a stop by
//! SIGTERM. Must never leave the child running: dropping a [`RingLb`] kills it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::error::SoakError;

/// Warning and error lines of ringlb's log kept for the report.
const LOG_TAIL: usize = 20;
/// Pause between readiness connects while the listener is not there yet.
const PROBE_RETRY: Duration = Duration::from_millis(10);

/// The config the soak runs ringlb with. ringlb's idle and half-close timeouts sit well above
/// the soak's own no-progress limit (`no_progress`): the soak judges whether a stream moves,
/// seeing both ends, while ringlb cannot see a backend read bytes already in its kernel
/// buffer, which a driver busy with thousands of streams can take a minute to do. Those
/// timeouts have tests of their own (tests/timeouts.rs).
pub fn config_text(workers: usize, backends: &[SocketAddr], no_progress: Duration) -> String {
    let timeout = no_progress.as_secs().max(1) * 3;
    // replay_buffer = 0: the soak's verdict expects every stream on a killed backend to be
    // cut, and its backends accept a stream's header once; a replayed stream would reach a
    // second backend (replay has its own tests, tests/replay.rs).
    let mut t = format!(
        "# Written by ringlb-soak.\n[runtime]\nworkers = {workers}\n\n[[listener]]\n\
         name = \"soak\"\nbind = \"127.0.0.1:0\"\npool = \"soak\"\n\n[[pool]]\n\
         name = \"soak\"\nbalance = \"least_connections\"\n\
         idle_timeout = \"{timeout}s\"\nhalf_close_timeout = \"{timeout}s\"\nreplay_buffer = 0\n"
    );
    for b in backends {
        t += &format!("\n[[pool.backend]]\naddr = \"{b}\"\n");
    }
    t
}

/// Warnings and errors ringlb logged.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LogSummary {
    pub warnings: u64,
    pub errors: u64,
    pub last: Vec<String>,
}

#[derive(Default)]
struct LogState {
    warnings: u64,
    errors: u64,
    last: VecDeque<String>,
}

pub struct RingLb {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    log: Arc<Mutex<LogState>>,
}

/// Drops terminal colour sequences (ESC [ ... letter) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of a tracing line `... listening listener=NAME addr=IP:PORT`.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    if !line.contains(" listening") {
        return None;
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

fn follow_log(
    stderr: impl std::io::Read,
    mut file: std::fs::File,
    state: Arc<Mutex<LogState>>,
    addr_tx: oneshot::Sender<SocketAddr>,
) {
    let mut addr_tx = Some(addr_tx);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(file, "{line}");
        if let Some(a) = addr_tx.as_ref().and(listening_addr(&line)) {
            let _ = addr_tx.take().map(|tx| tx.send(a));
        }
        let plain = strip_ansi(&line);
        let (warn, error) = (plain.contains(" WARN "), plain.contains(" ERROR "));
        if warn || error {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.warnings += u64::from(warn);
            st.errors += u64::from(error);
            if st.last.len() == LOG_TAIL {
                st.last.pop_front();
            }
            st.last.push_back(plain);
        }
    }
}

impl RingLb {
    /// Writes the config into `dir`, starts ringlb and waits (up to `within`) until its
    /// listener accepts a connection.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        config: &str,
        within: Duration,
    ) -> Result<RingLb, SoakError> {
        let deadline = Instant::now() + within;
        let cfg_path = dir.join("ringlb.toml");
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SoakError::Write { path, source }
        };
        std::fs::write(&cfg_path, config).map_err(write_err(&cfg_path))?;
        let log_path = dir.join("ringlb.log");
        let log_file = std::fs::File::create(&log_path).map_err(write_err(&log_path))?;
        let mut child = Command::new(bin)
            .args(["--log", "info", "run", "-c"])
            .arg(&cfg_path)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SoakError::SpawnRingLb {
                path: bin.to_path_buf(),
                source,
            })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(LogState::default()));
        let (addr_tx, addr_rx) = oneshot::channel();
        let state = log.clone();
        std::thread::Builder::new()
            .name("ringlb-log".into())
            .spawn(move || follow_log(stderr, log_file, state, addr_tx))
            .map_err(SoakError::Runtime)?;
        let pid = child.id();
        let mut me = RingLb {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_path,
            log,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        me.addr = match tokio::time::timeout(left, addr_rx).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => return Err(me.not_ready("it exited before logging `listening`")),
            Err(_) => return Err(me.not_ready("no `listening` line in its log")),
        };
        while TcpStream::connect(me.addr).await.is_err() {
            if Instant::now() >= deadline {
                return Err(me.not_ready("its listener never accepted"));
            }
            tokio::time::sleep(PROBE_RETRY).await;
        }
        Ok(me)
    }

    fn not_ready(&mut self, why: &str) -> SoakError {
        let status = self.exited().map(|s| format!(" ({s})")).unwrap_or_default();
        let tail = self.log_summary().last.join("\n  ");
        SoakError::NotReady {
            reason: format!("{why}{status}; log {}:\n  {tail}", self.log_path.display()),
        }
    }

    /// `Some` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_summary(&self) -> LogSummary {
        let st = self.log.lock().unwrap_or_else(|e| e.into_inner());
        LogSummary {
            warnings: st.warnings,
            errors: st.errors,
            last: st.last.iter().cloned().collect(),
        }
    }

    /// SIGTERM, then waits up to `within`; kills it if it is still there. The exit status, or
    /// why there is none.
    pub async fn stop(&mut self, within: Duration) -> Result<ExitStatus, String> {
        if let Some(s) = self.exited() {
            return Err(format!("it had already exited ({s})"));
        }
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| format!("SIGTERM failed: {e}"))?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            tokio::time::sleep(PROBE_RETRY).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!("still running {within:?} after SIGTERM; killed"))
    }
}

impl Drop for RingLb {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address_with_or_without_colour() {
        let plain = "2026-12-01T10:00:00.000001Z  INFO ringlb: listening listener=soak \
                     addr=127.0.0.1:41234";
        assert_eq!(
            listening_addr(plain),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        let coloured = "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mringlb\u{1b}[0m: \
                        listening \u{1b}[3mlistener\u{1b}[0m\u{1b}[2m=\u{1b}[0msoak \
                        \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:9";
        assert_eq!(
            listening_addr(coloured),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(listening_addr("INFO ringlb: stopping addr=1.2.3.4:5"), None);
    }

    #[test]
    fn the_config_names_every_backend_and_validates() {
        let b: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ];
        let text = config_text(2, &b, Duration::from_secs(60));
        let cfg = crate::config::parse(&text, "soak.toml").expect("valid config");
        assert!(cfg.summary().contains("127.0.0.1:2"));
    }
}
