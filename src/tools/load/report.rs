//! The result of a run: [`Report`], serializable to the JSON that `--json` writes (and that
//! tests and benchmarks read back), and its human-readable rendering. Must never hide errors:
//! any failure is printed as a headline with its breakdown and samples.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ErrorCounts;
use super::histo::MetricSummary;
use super::options::{LoadOptions, Mode};
use super::stats::Recorder;

/// One distinct error message and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub message: String,
    pub count: u64,
}

/// Everything a run measured. Times are in microseconds; rates are per second of `duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub mode: Mode,
    pub target: String,
    pub connections: usize,
    /// Open-loop rate (requests/s), or null for closed loop.
    pub rate: Option<f64>,
    /// From the first request to the last one finished (in-flight requests are let finish).
    pub duration_s: f64,
    /// Requests finished, well or not (`ok` + `errors.total`). Idle: connections attempted.
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Up to ten distinct error messages with their counts.
    pub error_samples: Vec<ErrorSample>,
    /// Requests in flight abandoned because the run was stopped (Ctrl-C); in no other count.
    pub cancelled: u64,
    pub requests_per_s: f64,
    /// Bytes received (response heads and bodies, echoes, messages).
    pub bytes: u64,
    pub bytes_sent: u64,
    /// Bytes received per second.
    pub bytes_per_s: f64,
    /// SSE events or WebSocket text messages before `[DONE]`, on all requests.
    pub tokens: u64,
    pub tokens_per_s: f64,
    /// TCP connect (plus the WebSocket handshake in websocket mode).
    pub connect: MetricSummary,
    /// Start to the first response byte (or the first message in websocket mode).
    pub ttfb: MetricSummary,
    /// Start to the first token (sse, websocket).
    pub ttft: MetricSummary,
    /// Inter-token latency: gaps between the reads that carried tokens, successful streams.
    #[serde(default)]
    pub itl: MetricSummary,
    /// Time per output token after the first, one value per successful stream (a client's
    /// tokens/s is 1e6 / tpot).
    #[serde(default)]
    pub tpot: MetricSummary,
    /// Start to the end of the response or stream (idle: how long each connection was held).
    pub request: MetricSummary,
    /// Open loop: intended start to the request being sent (waiting for a free connection).
    pub queue: MetricSummary,
    pub connections_opened: u64,
    /// Idle mode: held connections the peer closed before the end.
    pub closed_early: u64,
    /// Successful requests per value of the backend header (`(none)` when it was missing).
    pub backends: BTreeMap<String, u64>,
}

impl Report {
    pub fn build(opts: &LoadOptions, rec: &Recorder, elapsed: Duration, cancelled: u64) -> Self {
        let secs = elapsed.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let requests = rec.ok + rec.errors.total;
        let mut error_samples: Vec<ErrorSample> = rec
            .error_samples
            .iter()
            .map(|(message, &count)| ErrorSample {
                message: message.clone(),
                count,
            })
            .collect();
        error_samples.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        Report {
            mode: opts.mode,
            target: opts.target.clone(),
            connections: opts.connections,
            rate: opts.rate,
            duration_s: secs,
            requests,
            ok: rec.ok,
            errors: rec.errors,
            error_samples,
            cancelled,
            requests_per_s: per_s(requests),
            bytes: rec.bytes_in,
            bytes_sent: rec.bytes_out,
            bytes_per_s: per_s(rec.bytes_in),
            tokens: rec.tokens,
            tokens_per_s: per_s(rec.tokens),
            connect: rec.connect.summary(),
            ttfb: rec.ttfb.summary(),
            ttft: rec.ttft.summary(),
            itl: rec.itl.summary(),
            tpot: rec.tpot.summary(),
            request: rec.request.summary(),
            queue: rec.queue.summary(),
            connections_opened: rec.connections_opened,
            closed_early: rec.closed_early,
            backends: rec.backends.clone(),
        }
    }
}

fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let looping = match self.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_string(),
        };
        writeln!(
            f,
            "ringlb-load {} -> {}: {} connections, {looping}, {:.2}s",
            self.mode.name(),
            self.target,
            self.connections,
            self.duration_s
        )?;
        let noun = if self.mode == Mode::Idle {
            "connections"
        } else {
            "requests"
        };
        writeln!(
            f,
            "  {noun:<12}{:>10}  ({} ok, {} failed)  {:.1}/s",
            self.requests, self.ok, self.errors.total, self.requests_per_s
        )?;
        if self.mode.streams_tokens() {
            writeln!(
                f,
                "  {:<12}{:>10}  {:.1}/s",
                "tokens", self.tokens, self.tokens_per_s
            )?;
        }
        writeln!(
            f,
            "  {:<12}{:>10}  received ({}/s), {} sent; {} connections opened",
            "bytes",
            bytes(self.bytes as f64),
            bytes(self.bytes_per_s),
            bytes(self.bytes_sent as f64),
            self.connections_opened
        )?;
        if self.mode == Mode::Idle {
            writeln!(
                f,
                "  idle: {} established, {} closed early by the peer",
                self.connections_opened, self.closed_early
            )?;
        }
        if self.cancelled > 0 {
            writeln!(
                f,
                "  stopped early: {} requests in flight abandoned",
                self.cancelled
            )?;
        }
        self.fmt_metrics(f)?;
        self.fmt_errors(f)?;
        self.fmt_backends(f)
    }
}

impl Report {
    fn fmt_metrics(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("connect", &self.connect),
            ("first byte", &self.ttfb),
            ("first token", &self.ttft),
            ("inter-token", &self.itl),
            ("per token", &self.tpot),
            (
                if self.mode == Mode::Idle {
                    "held"
                } else {
                    "request"
                },
                &self.request,
            ),
            ("queue", &self.queue),
        ];
        writeln!(
            f,
            "\n  {:<12}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
        )?;
        for (name, m) in rows.iter().filter(|(_, m)| m.count > 0) {
            writeln!(
                f,
                "  {name:<12}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
                m.count,
                micros(m.p50),
                micros(m.p90),
                micros(m.p99),
                micros(m.p999),
                micros(m.max),
                micros(m.mean.round() as u64)
            )?;
        }
        Ok(())
    }

    fn fmt_errors(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errors;
        if e.total == 0 {
            return writeln!(f, "\n  no errors");
        }
        let share = 100.0 * e.total as f64 / self.requests.max(1) as f64;
        writeln!(
            f,
            "\n  ERRORS: {} of {} failed ({share:.1}%): connect {}, timeout {}, protocol {}, closed {}, mismatch {}",
            e.total, self.requests, e.connect, e.timeout, e.protocol, e.closed, e.mismatch
        )?;
        for sample in &self.error_samples {
            writeln!(f, "  {:>8}x {}", sample.count, sample.message)?;
        }
        Ok(())
    }

    fn fmt_backends(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.backends.is_empty() {
            return Ok(());
        }
        let total: u64 = self.backends.values().sum();
        let width = self.backends.keys().map(String::len).max().unwrap_or(0);
        writeln!(f, "\n  backends ({} responses):", total)?;
        for (name, &count) in &self.backends {
            let share = count as f64 / total.max(1) as f64;
            let bar = "#".repeat((share * 40.0).round() as usize);
            writeln!(
                f,
                "    {name:<width$} {count:>8} {:>5.1}% {bar}",
                share * 100.0
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(micros(999), "999us");
        assert_eq!(micros(1_500), "1.50ms");
        assert_eq!(micros(2_500_000), "2.50s");
        assert_eq!(bytes(512.0), "512.0 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
    }
}
