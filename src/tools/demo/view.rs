//! The demo's once-a-second table: per backend, streams in flight (as the balancer counts them
//! and as the backend sees them), queue, totals, tokens/s and time to first token.
//! Pure formatting: must never touch sockets or block.

use crate::tools::fleet::StatsSnapshot;

#[derive(Clone, Debug)]
pub struct BackendRow {
    pub name: String,
    pub capacity: usize,
    /// Connections the balancer's table counts on this backend right now.
    pub balancer_active: u32,
    pub stats: StatsSnapshot,
}

/// Renders the table; `prev` (a second earlier) gives the tokens/s column.
pub fn render(rows: &[BackendRow], prev: &[BackendRow], elapsed_s: f64) -> String {
    let mut out = format!(
        "{:<14} {:>4} {:>8} {:>9} {:>8} {:>9} {:>9} {:>10} {:>10}\n",
        "backend",
        "cap",
        "lb conns",
        "streaming",
        "waiting",
        "served",
        "tokens/s",
        "ttft p50",
        "ttft p99"
    );
    let (mut conns, mut active, mut waiting, mut served, mut rate) = (0u64, 0, 0, 0, 0.0);
    for (i, r) in rows.iter().enumerate() {
        let before = prev
            .get(i)
            .map_or(r.stats.total_tokens, |p| p.stats.total_tokens);
        let tps = r.stats.total_tokens.saturating_sub(before) as f64 / elapsed_s.max(1e-3);
        out += &format!(
            "{:<14} {:>4} {:>8} {:>9} {:>8} {:>9} {:>9.0} {:>10} {:>10}\n",
            r.name,
            r.capacity,
            r.balancer_active,
            r.stats.active,
            r.stats.waiting,
            r.stats.total_streams,
            tps,
            ms(r.stats.ttft_p50_us, r.stats.ttft_count),
            ms(r.stats.ttft_p99_us, r.stats.ttft_count),
        );
        conns += r.balancer_active as u64;
        active += r.stats.active;
        waiting += r.stats.waiting;
        served += r.stats.total_streams;
        rate += tps;
    }
    out += &format!(
        "{:<14} {:>4} {:>8} {:>9} {:>8} {:>9} {:>9.0}\n",
        "total", "", conns, active, waiting, served, rate
    );
    out
}

fn ms(us: u64, count: u64) -> String {
    if count == 0 {
        "-".to_string()
    } else {
        format!("{:.0} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, active: u64, tokens: u64) -> BackendRow {
        BackendRow {
            name: name.into(),
            capacity: 8,
            balancer_active: active as u32,
            stats: StatsSnapshot {
                active,
                total_tokens: tokens,
                ttft_count: 1,
                ttft_p50_us: 61_000,
                ttft_p99_us: 90_000,
                ..Default::default()
            },
        }
    }

    #[test]
    fn shows_rates_from_two_snapshots_and_a_total_line() {
        let prev = vec![row("a", 1, 100), row("b", 2, 0)];
        let now = vec![row("a", 3, 150), row("b", 4, 40)];
        let t = render(&now, &prev, 1.0);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("50") && lines[1].contains("61 ms"), "{t}");
        assert!(
            lines[3].starts_with("total") && lines[3].contains(" 7 "),
            "{t}"
        );
        assert!(lines[3].trim_end().ends_with("90"), "{t}");
    }
}
