//! ringlb's performance targets and their verdicts. Must never call a target met without a
//! measured figure for ringlb and, where the target is relative, for HAProxy.

use super::metrics::Metric;
use super::model::Target;
use super::summary::Summary;

/// How a target compares ringlb's median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// At most this value, in the metric's unit.
    AtMost(f64),
    /// At most this multiple of HAProxy's figure.
    AtMostTimesHaproxy(f64),
    /// At least this multiple of HAProxy's figure.
    AtLeastTimesHaproxy(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    pub what: &'static str,
    pub metric: Metric,
    pub rule: Rule,
}

/// The targets of the benchmark issue.
pub const GOALS: [Goal; 6] = [
    Goal {
        what: "memory per idle relayed connection",
        metric: Metric::IdleBytesPerConn,
        rule: Rule::AtMost(1024.0),
    },
    Goal {
        what: "proxy CPU per GB (bulk)",
        metric: Metric::BulkCpuPerGb,
        rule: Rule::AtMostTimesHaproxy(0.5),
    },
    Goal {
        what: "bulk throughput",
        metric: Metric::BulkGbps,
        rule: Rule::AtLeastTimesHaproxy(1.3),
    },
    Goal {
        what: "connections per second",
        metric: Metric::ConnsPerSec,
        rule: Rule::AtLeastTimesHaproxy(1.3),
    },
    Goal {
        what: "proxy CPU per connection",
        metric: Metric::CpuUsPerConn,
        rule: Rule::AtMostTimesHaproxy(0.7),
    },
    Goal {
        what: "added p99 latency, small messages",
        metric: Metric::AddedP99Us,
        rule: Rule::AtMostTimesHaproxy(1.0),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::NotMeasured => "not measured",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoalResult {
    pub goal: Goal,
    pub ringlb: Option<f64>,
    pub haproxy: Option<f64>,
    pub verdict: Verdict,
}

impl Goal {
    /// The goal in words, e.g. "<= 0.5x HAProxy".
    pub fn describe(&self) -> String {
        match self.rule {
            Rule::AtMost(v) => format!("<= {v} {}", unit_word(self.metric))
                .trim_end()
                .to_string(),
            Rule::AtMostTimesHaproxy(1.0) => "no worse than HAProxy".to_string(),
            Rule::AtMostTimesHaproxy(f) => format!("<= {f}x HAProxy"),
            Rule::AtLeastTimesHaproxy(f) => format!(">= {f}x HAProxy"),
        }
    }

    pub fn evaluate(&self, summary: &Summary) -> GoalResult {
        let ringlb = summary.value(self.metric, Target::Ringlb);
        let haproxy = summary.value(self.metric, Target::Haproxy);
        // Compared by multiplication, not by ratio, so a negative added latency still counts.
        let met = match self.rule {
            Rule::AtMost(limit) => ringlb.map(|r| r <= limit),
            Rule::AtMostTimesHaproxy(f) => ringlb.zip(haproxy).map(|(r, h)| r <= f * h),
            Rule::AtLeastTimesHaproxy(f) => ringlb.zip(haproxy).map(|(r, h)| r >= f * h),
        };
        let verdict = match met {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Miss,
            None => Verdict::NotMeasured,
        };
        GoalResult {
            goal: *self,
            ringlb,
            haproxy,
            verdict,
        }
    }
}

fn unit_word(metric: Metric) -> &'static str {
    match metric {
        Metric::IdleBytesPerConn => "bytes",
        _ => "",
    }
}

pub fn evaluate_all(summary: &Summary) -> Vec<GoalResult> {
    GOALS.iter().map(|g| g.evaluate(summary)).collect()
}
