//! What the kernel saw when a soak stream stalled: on a side's no-progress timeout, the sockets
//! of both hops of that side (ours and ringlb's) as `ss -tinme` prints them, into
//! `stall-<port>-<side>.txt` in the work directory. Queues, windows and timers tell a stall in
//! ringlb (bytes sitting in its receive queue, nothing in flight) from one in a peer or the
//! network. Best effort: a missing `ss` or directory loses only the snapshot, never the run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tokio::net::TcpStream;

use super::outcome::{Cause, End};

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where snapshots go; set once by the run before any stream starts.
pub fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

/// A stream's end as the driver reports it: a no-progress timeout whose snapshot shows the
/// reset was lost in this host's kernel (see [`capture`]) becomes `Cause::ResetLost`; every
/// other end, and a timeout without that evidence, stays as it is.
pub fn classify(end: End, stream: &TcpStream, side: &str) -> End {
    let End::Cut {
        cause: Cause::Timeout,
        at_ms,
        detail,
    } = end
    else {
        return end;
    };
    match capture(stream, side) {
        Some(drops) => End::Cut {
            cause: Cause::ResetLost,
            at_ms,
            detail: format!(
                "{detail}; ringlb's socket is gone and this one dropped {drops} \
                 segments: its reset was lost in this host's kernel"
            ),
        },
        None => End::Cut {
            cause: Cause::Timeout,
            at_ms,
            detail,
        },
    }
}

/// Saves the snapshot of `stream`'s hop, and reads it: `Some(drops)` when ringlb's socket of
/// this hop is gone (ringlb closed it, with a reset: a FIN close would leave it in FIN-WAIT or
/// TIME-WAIT) while this socket dropped `drops` incoming segments. A reset is sent once and
/// never retransmitted, so one dropped by this host's kernel leaves the peer waiting forever:
/// that is the kernel's loss, not ringlb's. `side` selects the hop: "client" (the client's
/// socket and ringlb's accepted one) or the backend's (ringlb's connecting socket and ours).
pub fn capture(stream: &TcpStream, side: &str) -> Option<u64> {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return None;
    };
    let port = if side == "client" {
        local.port()
    } else {
        peer.port()
    };
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = Command::new("ss")
        .args(["-tinmeH", "state", "all"])
        .arg(&filter)
        .output();
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("ss failed: {e}\n"),
    };
    if let Some(dir) = DIR.get() {
        let _ = std::fs::write(dir.join(format!("stall-{port}-{side}.txt")), &text);
    }
    lost_reset(&text, &local.to_string(), &peer.to_string())
}

/// See [`capture`]: `local`/`peer` are this socket's addresses as `ss` prints them.
fn lost_reset(ss: &str, local: &str, peer: &str) -> Option<u64> {
    let lines: Vec<&str> = ss.lines().collect();
    let socket = |from: &str, to: &str| {
        lines.iter().position(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 5 && f[0] != "TIME-WAIT" && f[3] == from && f[4] == to
        })
    };
    if socket(peer, local).is_some() {
        return None;
    }
    let ours = socket(local, peer)?;
    let skmem = lines.get(ours + 1)?;
    let at = skmem.find("skmem:(")?;
    let inside = &skmem[at + 7..];
    let inside = &inside[..inside.find(')')?];
    let drops: u64 = inside
        .split(',')
        .find_map(|f| f.strip_prefix('d'))?
        .parse()
        .ok()?;
    (drops > 0).then_some(drops)
}

#[cfg(test)]
mod tests {
    use super::lost_reset;

    const SS: &str = "FIN-WAIT-2 0 0 127.0.0.1:36772 127.0.0.1:39137 ino:1 sk:2 <--\n\
         \t skmem:(r0,rb404648,t0,tb3939840,f0,w0,o0,bl0,d28) ts sack\n\
         TIME-WAIT 0 0 127.0.0.1:39137 127.0.0.1:36772 timer:(timewait,53sec,0)\n\t\n";

    #[test]
    fn a_gone_peer_and_drops_on_ours_is_a_lost_reset() {
        assert_eq!(
            lost_reset(SS, "127.0.0.1:36772", "127.0.0.1:39137"),
            Some(28)
        );
        let no_drops = SS.replace("d28", "d0");
        assert_eq!(
            lost_reset(&no_drops, "127.0.0.1:36772", "127.0.0.1:39137"),
            None
        );
        let peer_alive =
            format!("{SS}ESTAB 0 0 127.0.0.1:39137 127.0.0.1:36772 ino:3\n\t skmem:(d0)\n");
        assert_eq!(
            lost_reset(&peer_alive, "127.0.0.1:36772", "127.0.0.1:39137"),
            None
        );
    }
}
