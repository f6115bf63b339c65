//! The Prometheus text exposition format (version 0.0.4), written by hand: a `# HELP` and a
//! `# TYPE` line per family, then its samples, label values escaped (`\\`, `\"`, `\n`), HELP
//! text escaped (`\\`, `\n`), values as Prometheus parses them (`+Inf`, `NaN`).
//!
//! It only formats; what is measured is `metrics.rs`'s business. It must never write a family
//! twice or a sample outside its family (scrapers reject both).

use std::fmt::Write;

/// The content type of this format.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A text exposition being written.
#[derive(Default)]
pub(super) struct Exposition {
    out: String,
    families: Vec<&'static str>,
}

impl Exposition {
    /// Starts family `name`: its HELP and TYPE lines. Samples written after it belong to it.
    pub(super) fn family(&mut self, name: &'static str, help: &str, kind: Kind) {
        debug_assert!(
            !self.families.contains(&name),
            "family {name} written twice"
        );
        self.families.push(name);
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{labels} value`. `name` is the family's name, or for a histogram
    /// the family's name with `_bucket`, `_sum` or `_count`.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(key);
                self.out.push_str("=\"");
                escape_label(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    pub(super) fn finish(self) -> String {
        self.out
    }
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Integers (all counters and most gauges) are written without a fraction, exactly up to
/// 2^53; other values with Rust's shortest round-trip form.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A bucket bound as the `le` label: seconds from microseconds, shortest form.
pub(super) fn le_seconds(us: u64) -> String {
    let mut s = String::new();
    write_value(&mut s, us as f64 / 1e6);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_labels_and_values() {
        let mut e = Exposition::default();
        e.family("x_total", "Things.\nMore \\ text", Kind::Counter);
        e.sample("x_total", &[], 3.0);
        e.sample("x_total", &[("a", "q\"u\\o\nte"), ("b", "2")], 0.25);
        e.sample("x_total", &[("c", "")], f64::INFINITY);
        e.sample("x_total", &[], f64::NAN);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\\nMore \\\\ text\n# TYPE x_total counter\nx_total 3\n\
             x_total{a=\"q\\\"u\\\\o\\nte\",b=\"2\"} 0.25\nx_total{c=\"\"} +Inf\nx_total NaN\n"
        );
        assert_eq!(le_seconds(1_000), "0.001");
        assert_eq!(le_seconds(2_500_000), "2.5");
        assert_eq!(le_seconds(60_000_000), "60");
    }
}
