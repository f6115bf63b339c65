//! What the control plane hands a running worker besides the policy: listening sockets a
//! reload added (each worker binds its own, SO_REUSEPORT), listeners a reload removed, and a
//! hand-over's request for duplicates of its listening sockets.
//! One box per worker; the worker checks its flag (one atomic load) every loop turn and takes
//! its letters under the box's lock only when there are some. Must never be read on the
//! per-connection path.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::worker::WorkerListener;

pub(super) enum Mail {
    /// Start accepting on this socket (its `index` is the listener's in the running config).
    Listen(WorkerListener),
    /// Stop accepting on listener `index` (config index): take its backlog, close it.
    Close(usize),
    /// A hand-over: answer with a duplicate of every socket accepted on (see `handover`).
    Lend(std::sync::mpsc::Sender<super::handover::LendReply>),
}

#[derive(Default)]
struct Box_ {
    has_mail: AtomicBool,
    letters: Mutex<Vec<Mail>>,
}

/// Every worker's box.
pub(super) struct Mailbox {
    boxes: Vec<Box_>,
}

impl Mailbox {
    pub fn new(workers: usize) -> Mailbox {
        Mailbox {
            boxes: (0..workers).map(|_| Box_::default()).collect(),
        }
    }

    pub fn post(&self, worker: usize, mail: Mail) {
        if let Some(b) = self.boxes.get(worker) {
            b.letters.lock().push(mail);
            b.has_mail.store(true, Ordering::Release);
        }
    }

    /// The letters for `worker`, if any (cheap when there are none).
    pub fn take(&self, worker: usize) -> Vec<Mail> {
        let Some(b) = self.boxes.get(worker) else {
            return Vec::new();
        };
        if !b.has_mail.load(Ordering::Acquire) {
            return Vec::new();
        }
        b.has_mail.store(false, Ordering::Release);
        std::mem::take(&mut *b.letters.lock())
    }
}
