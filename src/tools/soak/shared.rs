//! Where a backend tells the driver what it saw of a stream, keyed by the stream id from the
//! header: the client registers the id before it connects, the backend that reads the header
//! claims it (the client learns which backend it reached) and later hands in its report.
//! Must never hand one stream to two backend connections, nor lose a connection it could not
//! match: unknown and bad headers are counted, with samples.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::oneshot;

use super::outcome::SideOutcome;

/// What the backend saw of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendReport {
    pub backend: usize,
    #[serde(flatten)]
    pub side: SideOutcome,
}

struct Slot {
    arrived: oneshot::Sender<usize>,
    report: oneshot::Sender<BackendReport>,
    /// The stream's progress clock (see `side::Progress`), shared with the backend side.
    clock: Arc<AtomicU64>,
}

/// What a backend gets for a claimed stream.
pub struct Claim {
    pub report: oneshot::Sender<BackendReport>,
    pub clock: Arc<AtomicU64>,
}

/// The client's end of a registered stream.
pub struct Ticket {
    pub arrived: oneshot::Receiver<usize>,
    pub report: oneshot::Receiver<BackendReport>,
}

/// Connections the backends could not tie to a stream.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Unmatched {
    /// Closed cleanly before a single byte (the readiness probe).
    pub empty: u64,
    /// Reset or killed before the whole header arrived (a client reset right after connecting).
    pub cut_before_header: u64,
    /// A header that did not decode, an id no client registered or already claimed, a clean EOF
    /// inside the header, or no header within the no-progress limit: each one a failure.
    pub bad: u64,
    pub bad_samples: Vec<String>,
}

const BAD_SAMPLES: usize = 10;

#[derive(Default)]
pub struct Registry {
    slots: Mutex<HashMap<u64, Slot>>,
    empty: AtomicU64,
    cut_before_header: AtomicU64,
    bad: Mutex<(u64, Vec<String>)>,
}

impl Registry {
    pub fn register(&self, id: u64, clock: Arc<AtomicU64>) -> Ticket {
        let (arrived_tx, arrived) = oneshot::channel();
        let (report_tx, report) = oneshot::channel();
        let slot = Slot {
            arrived: arrived_tx,
            report: report_tx,
            clock,
        };
        self.lock().insert(id, slot);
        Ticket { arrived, report }
    }

    /// A backend read the header of stream `id`: tells the client, returns where to report.
    pub fn claim(&self, id: u64, backend: usize) -> Option<Claim> {
        let slot = self.lock().remove(&id)?;
        let _ = slot.arrived.send(backend);
        Some(Claim {
            report: slot.report,
            clock: slot.clock,
        })
    }

    /// The client is done with `id` (it never reached a backend, or its report is in).
    pub fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub fn note_empty(&self) {
        self.empty.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_cut_before_header(&self) {
        self.cut_before_header.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_bad(&self, what: String) {
        let mut bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
        bad.0 += 1;
        if bad.1.len() < BAD_SAMPLES {
            bad.1.push(what);
        }
    }

    pub fn unmatched(&self) -> Unmatched {
        let bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
        Unmatched {
            empty: self.empty.load(Ordering::Relaxed),
            cut_before_header: self.cut_before_header.load(Ordering::Relaxed),
            bad: bad.0,
            bad_samples: bad.1.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}
