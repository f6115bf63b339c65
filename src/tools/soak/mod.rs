//! `ringlb-soak`: a soak-and-fault test of the real `ringlb` binary. It starts its own backends
//! (in-process tokio listeners on 127.0.0.1:0), runs ringlb on them as a child process, drives
//! thousands of concurrent streams of seeded random sizes, pacing and kinds (half-closes both
//! ways, echo, resets from either side, clients that stop reading, backends killed and
//! restarted), checks every stream with BLAKE3 both ways, and checks ringlb's descriptors,
//! memory and idle CPU after the load. `scripts/soak.sh` runs it; `scripts/README.md` explains
//! the report.
//!
//! Tokio is fine here: this is a test driver, not the balancer's data plane. It must never pass
//! a run with a failed check, never judge a stream on one side's word, and never leave a process
//! it started running.

mod args;
mod assemble;
mod backend;
mod checks;
mod client;
mod dist;
mod error;
mod header;
mod kills;
mod monitor;
mod netstat;
mod outcome;
mod pattern;
mod plan;
mod procfs;
mod record;
mod report;
mod ringlb;
mod run;
mod shared;
mod side;
mod snapshot;
mod streams;
mod tally;
mod verdict;

pub use args::{Options, SoakArgs};
pub use error::SoakError;
pub use report::Report;
pub use ringlb::strip_ansi;
pub use run::{run, run_blocking};
