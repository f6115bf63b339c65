//! ringlb: a Layer-4 TCP/WebSocket connection balancer for GPU inference fleets, on io_uring.
//!
//! The tree follows the architecture:
//! - [`engine`]: thread-per-core workers, each with one io_uring ring, relaying bytes unchanged;
//! - [`balance`]: the backend table shared by all workers, and one file per strategy;
//! - [`config`]: the TOML config, parsed into typed, validated values;
//! - [`demo`]: `ringlb demo`, the fleet and balancer with a live table, no files needed;
//! - [`fleet`]: mock GPU inference backends for the demo, the tests and the benchmarks.
//! - [`load`]: the `ringlb-load` load generator (SSE, WebSocket, HTTP, TCP echo, idle).
//!
//! `unsafe` is denied everywhere except the ring and buffer layer (`engine::uring`).
#![deny(unsafe_code)]

pub mod balance;
pub mod benchreport;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod fleet;
pub mod load;
pub mod tools;
