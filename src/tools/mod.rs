//! Everything that is not the balancer itself: the programs and test doubles that ship with
//! ringlb and run around it, never inside it.
//!
//! - [`fleet`]: mock GPU inference backends for the demo, the tests and the benchmarks;
//! - [`demo`]: `ringlb demo`, the fleet and balancer with a live table, no files needed;
//! - [`load`]: the `ringlb-load` load generator (SSE, WebSocket, HTTP, TCP echo, idle);
//! - [`benchreport`]: the `ringlb-bench-report` writer of the benchmark report and chart;
//! - [`lengths`]: completion-length distributions, shared by the mock fleet and the load tool;
//! - [`soak`]: the `ringlb-soak` soak and fault driver behind `scripts/soak.sh`.
//!
//! Dependencies point one way only: tools may use the balancer's modules (the demo starts the
//! real engine with a real config), but the `engine` and `balance` modules must never depend on
//! anything in `tools`, so the data plane builds, reads and reviews without any of it. tokio and
//! the other tool-only crates belong here, never in the data plane.

pub mod benchreport;
pub mod demo;
pub mod fleet;
pub mod lengths;
pub mod load;
pub mod soak;
