//! The progress bar on stderr while a run goes (indicatif), fed from the lock-free counters.
//! Must never draw when stderr is not a terminal or `--quiet` was given, and never slow the
//! request path: workers only bump atomics, a ticker task draws.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::options::{Limit, LoadOptions};
use super::stats::Stats;

/// Redraw period: smooth enough to read, rare enough to cost nothing.
pub const DEFAULT_TICK: Duration = Duration::from_millis(100);

pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(opts: &LoadOptions, stats: Arc<Stats>, started: Instant) -> Self {
        if !opts.progress || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let (len, by_time) = match opts.limit {
            Limit::Requests(n) => (n, false),
            Limit::Duration(d) => (u64::try_from(d.as_millis()).unwrap_or(u64::MAX), true),
        };
        let bar = ProgressBar::new(len);
        let template = if by_time {
            "{spinner} {elapsed_precise} [{bar:30}] {msg}"
        } else {
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let mode = opts.mode;
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(DEFAULT_TICK);
            loop {
                tick.tick().await;
                let done = stats.done.load(Ordering::Relaxed);
                let failed = stats.failed.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let mut msg = format!("{done} done, {failed} errors, {:.0}/s", done as f64 / secs);
                if mode.streams_tokens() {
                    let tokens = stats.tokens.load(Ordering::Relaxed);
                    msg.push_str(&format!(
                        ", {tokens} tokens ({:.0}/s)",
                        tokens as f64 / secs
                    ));
                }
                if by_time {
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    ticker_bar.set_position(ms.min(len));
                } else {
                    ticker_bar.set_position(done.min(len));
                }
                ticker_bar.set_message(msg);
            }
        });
        Progress {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Stops the ticker (waiting until it can no longer redraw) and erases the bar.
    pub async fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            let _ = ticker.await;
        }
        self.bar.finish_and_clear();
    }
}
