//! The one wasmtime [`Engine`] per process, configured for many short runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; the granularity of deadline checks and of
/// the guest yielding to the async executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide options.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Count instructions so runs can be given a fuel budget. Costs some speed
    /// on every run, so it is off unless a check asks for fuel.
    pub fuel: bool,
    /// Largest memory any check may be given (bytes); sizes the pool's slots.
    pub max_memory: u64,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fuel: false,
            max_memory: 4 << 30,
            pool_instances: 128,
        }
    }
}

/// Build the engine:
/// - component model, async host calls;
/// - epoch interruption, so a looping guest can be stopped at its deadline;
/// - the pooling allocator (instances are created per run: ~3x cheaper than
///   on-demand allocation), falling back to on-demand if the pool cannot be
///   reserved on this machine;
/// - fuel only when asked for.
pub fn build(options: &EngineOptions) -> anyhow::Result<Engine> {
    let mut config = base_config(options);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(options.pool_instances)
        .total_core_instances(options.pool_instances * 8)
        .total_memories(options.pool_instances * 2)
        .total_tables(options.pool_instances * 8)
        .total_stacks(options.pool_instances)
        .max_memory_size(usize::try_from(options.max_memory).unwrap_or(usize::MAX));
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
            Ok(Engine::new(&base_config(options))?)
        }
    }
}

fn base_config(options: &EngineOptions) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread
/// until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("vantage-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
