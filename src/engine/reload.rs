//! The engine's half of a config reload: publishing a new [`Policy`] to the workers (they
//! adopt it at their next loop turn, without a lock). The table is swapped by the caller
//! (with operator overrides applied) before the policy, so a new pool's index is in the table
//! by the time a listener sends clients to it.
//!
//! A reload keeps every pool's index (the caller lays the new config out that way), so live
//! connections, queued clients and per-pool counters keep pointing at the same pool. Must
//! never change what a live connection was started with.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;

use super::policy::Policy;
use super::queue::QueueShared;

/// Pools a reload may add beyond those the server started with: the per-pool queue counters
/// are allocated once, at start.
pub const POOL_HEADROOM: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{pools} pools (with the removed ones kept in place) exceed the {capacity} this process can hold; restart ringlb to apply this config")]
    TooManyPools { pools: usize, capacity: usize },
}

/// Cheap to clone; held by the control plane.
#[derive(Clone)]
pub struct EngineReload {
    pub(super) policy: Arc<ArcSwap<Policy>>,
    pub(super) queues: Arc<QueueShared>,
}

impl EngineReload {
    /// Pools the running engine can hold.
    pub fn pool_capacity(&self) -> usize {
        self.queues.waiting.len()
    }

    /// Refuses a config with more pools than [`Self::pool_capacity`].
    pub fn check(&self, config: &Config) -> Result<(), ReloadError> {
        let capacity = self.pool_capacity();
        if config.pools.len() > capacity {
            return Err(ReloadError::TooManyPools {
                pools: config.pools.len(),
                capacity,
            });
        }
        Ok(())
    }

    /// Publishes the policy of `config` (already [`check`](Self::check)ed, its pools at their
    /// old indexes); workers follow it from their next loop turn.
    pub fn apply(&self, config: &Config) -> Result<(), ReloadError> {
        self.check(config)?;
        self.policy.store(Arc::new(Policy::from_config(config)));
        Ok(())
    }
}
