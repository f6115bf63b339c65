//! The kernel's own TCP trouble counters (`/proc/net/netstat`, TcpExt) over a run: a soak
//! that holds gigabytes in loopback socket buffers can push the whole host into TCP memory
//! pressure, where the kernel shrinks windows and drops segments, and a stream then waits on
//! retransmission backoff however well ringlb behaves. Reported beside the verdict so that a
//! stall can be weighed against them. Reading them must never fail a run.

use std::collections::BTreeMap;

/// The counters worth reading for a stall, with what each means.
pub const WATCHED: [(&str, &str); 6] = [
    (
        "TCPMemoryPressures",
        "times the host entered TCP memory pressure",
    ),
    (
        "TCPMemoryPressuresChrono",
        "ms spent in TCP memory pressure",
    ),
    (
        "RcvPruned",
        "segments dropped from a receive queue for lack of memory",
    ),
    ("TCPZeroWindowDrop", "segments dropped for a zero window"),
    ("TCPAbortOnMemory", "connections aborted for lack of memory"),
    ("TCPTimeouts", "retransmission timeouts"),
];

/// The TcpExt counters now; empty if the file cannot be read.
pub fn tcp_ext() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/net/netstat")
        .map(|text| parse(&text))
        .unwrap_or_default()
}

/// `TcpExt:` comes as a line of names, then a line of values.
fn parse(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// Growth of the watched counters from `before` to `after`, in [`WATCHED`] order.
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    WATCHED
        .iter()
        .filter_map(|(name, _)| {
            let (b, a) = (before.get(*name)?, after.get(*name)?);
            Some((name.to_string(), a.saturating_sub(*b)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tcpext_pair_and_subtracts() {
        let t0 = "TcpExt: SyncookiesSent TCPMemoryPressures RcvPruned\nTcpExt: 0 3 10\n\
                  IpExt: InNoRoutes\nIpExt: 0\n";
        let t1 = "TcpExt: SyncookiesSent TCPMemoryPressures RcvPruned\nTcpExt: 0 5 10\n";
        let d = delta(&parse(t0), &parse(t1));
        assert_eq!(
            d,
            vec![("TCPMemoryPressures".into(), 2), ("RcvPruned".into(), 0)]
        );
        assert!(parse("garbage").is_empty());
    }
}
