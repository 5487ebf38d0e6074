//! The one wasmtime [`Engine`] per process, configured for many short runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

/// How often the epoch advances; the granularity of deadline checks and of
/// the guest yielding to the async executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Dirty bytes of each pooled linear memory and table that are reset in
/// place (and so stay resident) when an instance is dropped, instead of being
/// unmapped with `madvise(MADV_DONTNEED)`.
///
/// Why: with `madvise`, every run takes a copy-on-write page fault for each
/// page it touches again, and the unmapping flushes the TLB of the other cores
/// through IPIs (expensive in a VM); with `PAGEMAP_SCAN` (Linux 6.7+) wasmtime
/// finds the pages a run dirtied and copies them back from the image, up to
/// this many bytes, with no fault on the next run. Measured on the 2-core
/// build machine (load ~3): wasmtime alone (`vantage-bench floor`, trivial
/// check) 42–60 µs p50 per run with `madvise`, 13–19 µs with 1 MiB, 19–23 µs
/// with 256 KiB, no better with 4 MiB (18–21 µs); `Runtime::run` of the
/// trivial check 63 → 31 µs p50; the `http` check 8 → 0 page faults per run.
///
/// Why 1 MiB and not 4: a run of an official check dirties 30–250 KiB, so
/// 1 MiB already covers them all. What it costs is RSS: each pool slot keeps
/// the pages its last run dirtied, up to this size (a run that dirtied more
/// has the rest unmapped as before). Slots are reused by the same component
/// first, so in practice it is the slots used at once times what their runs
/// dirtied (`vantage-bench scale --checks 2000 --duration 1m`: peak RSS
/// 104 → 107 MiB); the worst case, every slot last used by a memory-hungry
/// check, is this size times the
/// pool's memories (`2 × (concurrency + 16)`: 160 MiB for concurrency 64;
/// it would be 640 MiB with 4 MiB). Not scaled with the pool: a smaller size
/// only lowers the worst case by making big runs fault again, and the worst
/// case needs hostile or huge checks in every slot. Tables get the same size;
/// a table slot is smaller than that anyway (its element limit × 8 bytes).
///
/// Without `PAGEMAP_SCAN` (`Enabled::Auto`: older kernels, non-Linux) wasmtime
/// `memset`s the lowest `KEEP_RESIDENT` bytes instead, which is still a little
/// faster than `madvise` (measured with 4 MiB: 43 against 54 µs, BENCHMARKS.md).
pub const KEEP_RESIDENT: usize = 1 << 20;

/// Which compiler turns a component into machine code.
///
/// Measured on the 2-core build machine (`Component::new`, medians of 3,
/// see BENCHMARKS.md "Check languages"): a componentize-py check (18.7 MB)
/// compiles in 6.2 s with Cranelift and 2.0 s with Winch (CPU 9.9 s against
/// 2.3 s), a componentize-js one (14 MB) in 7.4 s against 1.2 s, the Rust
/// `http` check in 190 against 38 ms. Winch's code is slower (a CPU-bound
/// Python run took about 1.3× as long) and its artifacts 30–45 % larger:
/// one-shot commands (`vantage run`, `vantage test`), which pay a compile
/// for every rebuilt component, use Winch; the daemon, which compiles once
/// and runs every minute, uses Cranelift unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    /// Cranelift, the optimizing compiler.
    #[default]
    Cranelift,
    /// Winch, the baseline compiler: several times faster to compile,
    /// slower code.
    Winch,
}

impl std::str::FromStr for Compiler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cranelift" => Ok(Compiler::Cranelift),
            "winch" => Ok(Compiler::Winch),
            other => Err(format!(
                "unknown compiler {other:?}: expected cranelift or winch"
            )),
        }
    }
}

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
    /// The compiler.
    pub compiler: Compiler,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fuel: false,
            max_memory: 4 << 30,
            pool_instances: 128,
            compiler: Compiler::Cranelift,
        }
    }
}

/// Build the engine:
/// - component model, async host calls;
/// - epoch interruption, so a looping guest can be stopped at its deadline;
/// - the pooling allocator (instances are created per run: ~3x cheaper than
///   on-demand allocation), keeping each slot's dirtied pages resident (see
///   [`KEEP_RESIDENT`]), falling back to on-demand if the pool cannot be
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
        .max_memory_size(usize::try_from(options.max_memory).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
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
    if options.compiler == Compiler::Winch {
        config.strategy(Strategy::Winch);
    }
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
