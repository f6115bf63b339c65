//! The per-backend counters and histograms of `/metrics` (bytes each way, streams by close
//! reason, connect failures by kind, connect-time and time-to-first-byte histograms, and the
//! streams a draining predecessor reports after a hand-over), read
//! from each backend's [`CountersSnapshot`](crate::balance::CountersSnapshot). Kept apart from
//! `metrics.rs`'s gauge rows because each family here is a whole label set or a histogram.
//! Must never invent a value: every count is what the engine recorded.

use crate::balance::{CountersSnapshot, HistogramSnapshot, LATENCY_BUCKETS_US};

use super::expo::{le_seconds, Exposition, Kind};
use super::sample::Sample;

type Labels<'a> = [(&'a str, &'a str); 2];

/// Calls `f` with the `pool` and `backend` labels and the counters of every backend.
fn each(
    e: &mut Exposition,
    s: &Sample,
    mut f: impl FnMut(&mut Exposition, Labels, &CountersSnapshot),
) {
    for p in &s.pools {
        for b in &p.backends {
            let addr = b.snap.addr.to_string();
            let labels = [("pool", p.name.as_str()), ("backend", addr.as_str())];
            f(e, labels, &b.snap.counters);
        }
    }
}

pub(super) fn render(e: &mut Exposition, s: &Sample) {
    let name = "ringlb_backend_handover_active";
    e.family(
        name,
        "Streams the process this one took over from (draining) still has open to the backend, as it last reported (every ~500 ms); picks weigh them with ringlb_backend_active_streams. 0 without a hand-over.",
        Kind::Gauge,
    );
    for p in &s.pools {
        for b in &p.backends {
            let addr = b.snap.addr.to_string();
            let labels = [("pool", p.name.as_str()), ("backend", addr.as_str())];
            e.sample(name, &labels, f64::from(b.snap.foreign));
        }
    }

    for (name, help, to_backend) in [
        (
            "ringlb_backend_sent_bytes_total",
            "Bytes relayed from clients to the backend.",
            true,
        ),
        (
            "ringlb_backend_received_bytes_total",
            "Bytes relayed from the backend to clients.",
            false,
        ),
    ] {
        e.family(name, help, Kind::Counter);
        each(e, s, |e, labels, c| {
            let v = if to_backend {
                c.bytes_to_backend
            } else {
                c.bytes_from_backend
            };
            e.sample(name, &labels, v as f64);
        });
    }

    let name = "ringlb_backend_streams_total";
    e.family(
        name,
        "Streams on the backend that ended, by close reason (client_fin, backend_fin, client_reset, backend_reset, idle_timeout, half_close_timeout, max_age, drained, shutdown, health_down, error, ...).",
        Kind::Counter,
    );
    each(e, s, |e, [pool, backend], c| {
        for (reason, v) in c.streams {
            e.sample(name, &[pool, backend, ("reason", reason.name())], v as f64);
        }
    });

    let name = "ringlb_backend_connect_failures_total";
    e.family(
        name,
        "Connects to the backend that failed, by kind: refused, timeout, unreachable, reset (accepted, then reset at once), other.",
        Kind::Counter,
    );
    each(e, s, |e, [pool, backend], c| {
        for (kind, v) in c.connect_failures {
            e.sample(name, &[pool, backend, ("kind", kind.name())], v as f64);
        }
    });

    for (name, help, first) in [
        (
            "ringlb_backend_connect_seconds",
            "Time to connect to the backend.",
            false,
        ),
        (
            "ringlb_backend_first_byte_seconds",
            "From the first request byte sent to the backend to its first byte back.",
            true,
        ),
    ] {
        e.family(name, help, Kind::Histogram);
        each(e, s, |e, labels, c| {
            histogram(
                e,
                name,
                labels,
                if first {
                    &c.first_byte
                } else {
                    &c.connect_time
                },
            );
        });
    }
}

fn histogram(e: &mut Exposition, name: &str, labels: Labels, h: &HistogramSnapshot) {
    let bucket = format!("{name}_bucket");
    for (bound, count) in LATENCY_BUCKETS_US.iter().zip(&h.cumulative) {
        let le = le_seconds(*bound);
        e.sample(&bucket, &[labels[0], labels[1], ("le", &le)], *count as f64);
    }
    let count = h.count() as f64;
    e.sample(&bucket, &[labels[0], labels[1], ("le", "+Inf")], count);
    e.sample(&format!("{name}_sum"), &labels, h.sum_us as f64 / 1e6);
    e.sample(&format!("{name}_count"), &labels, count);
}
