//! What the control plane's engine-metrics scraper does for one pool (`[pool.engine_metrics]`):
//! where it reads each backend's `/metrics`, how often, which series it reads, how long a
//! reading holds and when a silent engine counts as stalled. Plain data kept in the table's
//! [`PoolSpec`](super::PoolSpec) so that the scraper follows a reload that changes it; picks
//! only read what the scraper publishes (`engine_load.rs`), never this.

use std::time::Duration;

/// The scrape of one pool's backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineScrape {
    /// Starts with '/'; printable ASCII without spaces.
    pub path: String,
    /// Scrape this port on the backend's IP instead of its own port (a metrics sidecar).
    pub port: Option<u16>,
    /// One scrape per backend per interval, for the whole process.
    pub interval: Duration,
    /// At most `interval`.
    pub timeout: Duration,
    pub flavor: EngineFlavor,
    /// A reading holds this long after its scrape; more than `interval`.
    pub stale_after: Duration,
    /// Running requests and a generation counter that has not moved for this long: stalled.
    /// None = never.
    pub stall_after: Option<Duration>,
}

/// Which engine's series a scrape reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineFlavor {
    /// Found per backend from the series its scrape has.
    Auto,
    Vllm,
    Sglang,
    Tgi,
    /// Series named by the operator.
    Custom(EngineNames),
}

/// The series of a custom engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineNames {
    pub running: String,
    pub waiting: Option<String>,
    pub kv_usage: Option<String>,
    /// A counter that moves while the engine generates tokens; None = never stalls.
    pub generation: Option<String>,
}

impl EngineFlavor {
    /// The config name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EngineFlavor::Auto => "auto",
            EngineFlavor::Vllm => "vllm",
            EngineFlavor::Sglang => "sglang",
            EngineFlavor::Tgi => "tgi",
            EngineFlavor::Custom(_) => "custom",
        }
    }
}
