//! Which series each inference engine publishes its load under, how one scrape becomes one
//! reading, and which engine a scrape comes from (`flavor = "auto"`).
//!
//! A scrape is parsed with a Prometheus text-format parser; several label sets of a series
//! (vLLM's per-`model_name` and per-`engine` series) are combined: running and waiting
//! summed, KV usage the largest, the generation counter summed. This must never panic on any
//! text a backend sends, and never make up a value: a series the engine does not publish is
//! absent from the reading (KV usage) or fails the scrape (running).

use std::collections::HashMap;

use prom_text_format_parser::{parse_scrape, ScrapeParseError, Type, ValueType};

use crate::balance::{EngineFlavor, EngineReading};

/// The series one engine publishes: for each role, the names to look for, first found wins
/// (vLLM renamed its KV gauge; the old name is read where the new one is absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Series {
    /// "vllm", "sglang", "tgi" or "custom", for log lines.
    pub engine: &'static str,
    running: Vec<String>,
    waiting: Vec<String>,
    kv_usage: Vec<String>,
    generation: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Series {
    pub fn vllm() -> Series {
        Series {
            engine: "vllm",
            running: names(&["vllm:num_requests_running"]),
            waiting: names(&["vllm:num_requests_waiting"]),
            kv_usage: names(&["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
            generation: names(&["vllm:generation_tokens_total"]),
        }
    }

    pub fn sglang() -> Series {
        Series {
            engine: "sglang",
            running: names(&["sglang:num_running_reqs"]),
            waiting: names(&["sglang:num_queue_reqs"]),
            kv_usage: names(&["sglang:token_usage"]),
            generation: names(&["sglang:generation_tokens_total"]),
        }
    }

    /// TGI publishes no KV usage; its forward passes (prefill and decode, summed over
    /// `method`) stand for the generation counter.
    pub fn tgi() -> Series {
        Series {
            engine: "tgi",
            running: names(&["tgi_batch_current_size"]),
            waiting: names(&["tgi_queue_size"]),
            kv_usage: Vec::new(),
            generation: names(&["tgi_batch_inference_count"]),
        }
    }

    /// The series a configured flavor reads; None for `auto` (see [`Parsed::detect`]).
    pub fn of(flavor: &EngineFlavor) -> Option<Series> {
        match flavor {
            EngineFlavor::Auto => None,
            EngineFlavor::Vllm => Some(Series::vllm()),
            EngineFlavor::Sglang => Some(Series::sglang()),
            EngineFlavor::Tgi => Some(Series::tgi()),
            EngineFlavor::Custom(n) => Some(Series {
                engine: "custom",
                running: vec![n.running.clone()],
                waiting: n.waiting.iter().cloned().collect(),
                kv_usage: n.kv_usage.iter().cloned().collect(),
                generation: n.generation.iter().cloned().collect(),
            }),
        }
    }
}

/// Why a scrape gave no reading.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadError {
    #[error("not Prometheus text format: {0}")]
    Parse(String),
    #[error("no series of a known engine (vllm:num_requests_running, sglang:num_running_reqs, tgi_batch_current_size)")]
    UnknownEngine,
    #[error("{engine} series {name} is missing")]
    Missing { engine: &'static str, name: String },
}

/// Every label set of one series combined.
#[derive(Clone, Copy, Debug, Default)]
struct Combined {
    sum: f64,
    max: f64,
}

/// One scrape, by series name.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    series: HashMap<String, Combined>,
}

/// What one scrape says: the reading, and the generation counter for stall detection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct EngineSample {
    pub reading: EngineReading,
    /// None when the engine publishes no generation counter.
    pub generation: Option<f64>,
}

/// Parses a scrape. Metrics the parser cannot assemble (a `# TYPE` with no samples, which
/// Python's client prints for a labelled series before its first value) are skipped; a text
/// with no metric at all that fails to parse is an error.
pub(super) fn parse(text: &str) -> Result<Parsed, ReadError> {
    let (metrics, error) = parse_scrape(text);
    if metrics.is_empty() {
        match error {
            Some(ScrapeParseError::Parse(e)) => return Err(ReadError::Parse(first_line(&e))),
            Some(ScrapeParseError::Collect(errors)) => {
                let e = errors.first().map_or(String::new(), |e| e.error.clone());
                return Err(ReadError::Parse(e));
            }
            None => {}
        }
    }
    let mut parsed = Parsed::default();
    for m in metrics {
        if !matches!(m.kind, Type::Gauge | Type::Counter | Type::Untyped) {
            continue;
        }
        for sample in &m.samples {
            if sample.value.value_type != ValueType::Sample {
                continue;
            }
            // The parser checked the syntax; a value Rust reads differently is skipped.
            let Ok(v) = sample.value.value.parse::<f64>() else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            let c = parsed.series.entry(m.name.clone()).or_insert(Combined {
                sum: 0.0,
                max: f64::NEG_INFINITY,
            });
            c.sum += v;
            c.max = c.max.max(v);
        }
    }
    Ok(parsed)
}

impl Parsed {
    fn first(&self, names: &[String]) -> Option<Combined> {
        names.iter().find_map(|n| self.series.get(n).copied())
    }

    /// The engine whose series this scrape has.
    pub fn detect(&self) -> Result<Series, ReadError> {
        [Series::vllm(), Series::sglang(), Series::tgi()]
            .into_iter()
            .find(|s| self.first(&s.running).is_some())
            .ok_or(ReadError::UnknownEngine)
    }

    /// The reading by `series`; its running series must be there.
    pub fn read(&self, series: &Series) -> Result<EngineSample, ReadError> {
        let running = self
            .first(&series.running)
            .ok_or_else(|| ReadError::Missing {
                engine: series.engine,
                name: series.running.join(" or "),
            })?;
        let count = |c: Option<Combined>| c.map_or(0, |c| to_count(c.sum));
        Ok(EngineSample {
            reading: EngineReading {
                running: to_count(running.sum),
                waiting: count(self.first(&series.waiting)),
                kv_usage: self.first(&series.kv_usage).map(|c| c.max.clamp(0.0, 1.0)),
            },
            generation: self.first(&series.generation).map(|c| c.sum),
        })
    }
}

/// The parser's message can quote the whole rest of the text; the log gets its first line,
/// cut short.
fn first_line(e: &str) -> String {
    e.lines().next().unwrap_or("").chars().take(200).collect()
}

/// A gauge of requests as a count: engines print floats ("3.0"); negatives read as 0.
fn to_count(v: f64) -> u32 {
    // `as` saturates; NaN was filtered out when parsing.
    v.round().max(0.0) as u32
}

#[cfg(test)]
#[path = "engine_flavor_tests.rs"]
mod tests;
