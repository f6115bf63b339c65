//! The phantom external load (`--external-load N`): N streams that come from no client, as
//! when other clients reach the same GPU server without passing through the balancer. Each
//! one is admitted like a request (it queues, then holds a slot and its KV), generates its
//! tokens at the backend's pace (they count in the generation counter, the running gauge and
//! the stats), and restarts at once when it finishes, so the external load stays N.
//!
//! Must never outlive the backend (the tasks live in the accept loop's set and stop with it),
//! and never spin: every phantom generation has at least one paced token.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::queue_time::Origin;
use super::server::Shared;

/// Starts `n` phantom streams on the current runtime, into `set`.
pub(crate) fn spawn(set: &mut JoinSet<()>, shared: &Arc<Shared>, n: usize) {
    for _ in 0..n {
        set.spawn(phantom(shared.clone()));
    }
}

async fn phantom(shared: Arc<Shared>) {
    loop {
        let need = shared.gpu.phantom_need();
        let admitted = shared
            .gpu
            .admit(
                Instant::now(),
                need,
                Origin::External,
                std::future::pending(),
            )
            .await;
        let Some(mut gen) = admitted else {
            return;
        };
        while let Some(batch) = gen.next_batch().await {
            gen.written(batch);
        }
        gen.finish();
        // A very fast pace could otherwise keep this task from ever yielding to the others.
        tokio::task::yield_now().await;
    }
}
