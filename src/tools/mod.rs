//! Operator tools built on the library; each submodule backs one binary and never runs inside the balancer.

pub mod soak;
