//! What the kernel saw when a soak stream stalled: on a side's no-progress timeout, the sockets
//! of both hops of that side (ours and ringlb's) as `ss -tinme` prints them, into
//! `stall-<port>-<side>.txt` in the work directory. Queues, windows and timers tell a stall in
//! ringlb (bytes sitting in its receive queue, nothing in flight) from one in a peer or the
//! network. Best effort: a missing `ss` or directory loses only the snapshot, never the run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tokio::net::TcpStream;

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where snapshots go; set once by the run before any stream starts.
pub fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

/// `port` selects the hop: the client's local port (its socket and ringlb's accepted one) or,
/// on the backend side, the peer's port (ringlb's connecting socket and the backend's).
pub fn capture(stream: &TcpStream, side: &str) {
    let Some(dir) = DIR.get() else { return };
    let port = match side {
        "client" => stream.local_addr().map(|a| a.port()),
        _ => stream.peer_addr().map(|a| a.port()),
    };
    let Ok(port) = port else { return };
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = Command::new("ss")
        .args(["-tinmeH", "state", "all"])
        .arg(&filter)
        .output();
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("ss failed: {e}\n"),
    };
    let _ = std::fs::write(dir.join(format!("stall-{port}-{side}.txt")), text);
}
