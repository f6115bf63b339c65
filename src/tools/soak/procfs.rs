//! What the soak reads about the ringlb process from /proc: resident memory, open descriptors,
//! CPU time. Must never guess: a value it cannot read is an error, not a zero.

use std::fs;

use super::error::SoakError;

/// Clock ticks per second of /proc/PID/stat times: USER_HZ, which Linux fixes at 100 on every
/// mainstream architecture whatever the kernel's own HZ.
pub const USER_HZ: f64 = 100.0;

/// One reading of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: u64,
}

fn read(pid: u32, what: &'static str) -> Result<String, SoakError> {
    fs::read_to_string(format!("/proc/{pid}/{what}")).map_err(|source| SoakError::Proc {
        pid,
        what,
        source,
    })
}

fn unparsable(pid: u32, what: &'static str) -> SoakError {
    SoakError::Proc {
        pid,
        what,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected format"),
    }
}

pub fn usage(pid: u32) -> Result<Usage, SoakError> {
    let status = read(pid, "status")?;
    let rss_kib = parse_vm_rss(&status).ok_or_else(|| unparsable(pid, "status"))?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|source| SoakError::Proc {
            pid,
            what: "fd",
            source,
        })?
        .count() as u64;
    Ok(Usage { rss_kib, fds })
}

/// User + system CPU ticks of every thread of the process so far.
pub fn cpu_ticks(pid: u32) -> Result<u64, SoakError> {
    let stat = read(pid, "stat")?;
    parse_stat_ticks(&stat).ok_or_else(|| unparsable(pid, "stat"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the `(comm)` field, which
/// may itself contain spaces and parentheses.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_tricky_comm() {
        let stat = "4242 (ring lb) (x)) S 1 4242 4242 0 -1 4194560 1084 0 0 0 37 12 0 0 20 0 3";
        assert_eq!(parse_stat_ticks(stat), Some(49));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tringlb\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        let u = usage(me).unwrap();
        assert!(u.rss_kib > 0 && u.fds >= 3);
        cpu_ticks(me).unwrap();
    }
}
