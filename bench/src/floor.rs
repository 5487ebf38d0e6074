//! What wasmtime alone costs per run, for section 1's analysis: the same
//! component instantiated from an `InstancePre` into a fresh `Store` and its
//! `run` called, with only WASI linked (the `vantage:check` imports are
//! traps; the trivial check calls none) and no Vantage per-run work
//! (capabilities, captures, result conversion). Engine variants: the
//! daemon's configuration (see `runtime::engine::build`), the same with the
//! pool keeping memory and tables resident (reset by `memset` instead of
//! `madvise`: no page faults, no TLB-shootdown IPIs), and on-demand
//! allocation.

use std::path::Path;
use std::time::Instant;

use vantage::bindings::{CheckPre, common as wit};
use vantage::runtime::engine::KEEP_RESIDENT;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::probe::daemon_engine;
use crate::stats::{Summary, summarize};

/// An engine variant.
#[derive(Debug, Clone, Copy)]
pub enum Variant {
    /// As `vantage daemon` builds it.
    Daemon,
    /// The daemon's pool, keeping `bytes` of each memory and table resident
    /// (reset by `memset` of the lowest `bytes`).
    KeepResident(usize),
    /// The same, finding the pages to reset with `PAGEMAP_SCAN` (Linux 6.7+).
    PagemapKeepResident(usize),
    /// No pool.
    OnDemand,
}

impl Variant {
    /// For the report.
    pub fn describe(self) -> String {
        match self {
            Variant::Daemon => format!(
                "pooling, as the daemon configures it (`pagemap_scan(Auto)` + keep resident {} KiB)",
                KEEP_RESIDENT / 1024
            ),
            Variant::KeepResident(n) => format!(
                "pooling + `linear_memory_keep_resident` / `table_keep_resident` {} KiB",
                n / 1024
            ),
            Variant::PagemapKeepResident(n) => format!(
                "pooling + `pagemap_scan(Yes)` + keep resident {} KiB",
                n / 1024
            ),
            Variant::OnDemand => "on-demand allocator (no pool)".into(),
        }
    }
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn engine(variant: Variant) -> anyhow::Result<Engine> {
    let options = daemon_engine();
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if !matches!(variant, Variant::OnDemand) {
        let n = options.pool_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(options.max_memory as usize);
        match variant {
            Variant::Daemon => {
                // As `runtime::engine::build` sets it.
                pool.linear_memory_keep_resident(KEEP_RESIDENT)
                    .table_keep_resident(KEEP_RESIDENT)
                    .pagemap_scan(wasmtime::Enabled::Auto);
            }
            Variant::KeepResident(bytes) => {
                pool.linear_memory_keep_resident(bytes)
                    .table_keep_resident(bytes);
            }
            Variant::PagemapKeepResident(bytes) => {
                pool.linear_memory_keep_resident(bytes)
                    .table_keep_resident(bytes)
                    .pagemap_scan(wasmtime::Enabled::Yes);
            }
            _ => {}
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
}

/// A component ready to run under one engine variant.
pub struct Floor {
    engine: Engine,
    pre: CheckPre<State>,
    context: wit::RunContext,
}

impl Floor {
    /// Compile `component` for `variant` and link it (WASI only).
    pub fn new(component: &Path, variant: Variant) -> anyhow::Result<Floor> {
        let engine = engine(variant)?;
        let component = Component::from_file(&engine, component)?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = CheckPre::new(linker.instantiate_pre(&component)?)?;
        let context = wit::RunContext {
            check_name: "floor".into(),
            targets: Vec::new(),
            config: Vec::new(),
            location: String::new(),
            mode: wit::Mode::Edge,
            timeout_ms: 10_000,
            run_id: "floor".into(),
        };
        Ok(Floor {
            engine,
            pre,
            context,
        })
    }

    /// One run: a fresh store, instantiate, `run`, drop; wall time in µs.
    pub async fn run(&self) -> anyhow::Result<f64> {
        let t = Instant::now();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi: WasiCtxBuilder::new().build(),
                table: ResourceTable::new(),
            },
        );
        // No epoch ticker here: a deadline far away.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let result = instance.call_run(&mut store, &self.context).await?;
        drop(store);
        let us = t.elapsed().as_secs_f64() * 1e6;
        anyhow::ensure!(
            matches!(result.status, wit::Status::Pass),
            "the check did not pass"
        );
        Ok(us)
    }
}

/// `runs` runs (after `warmup`) of `component` under `variant`: wall time
/// per run (store, instantiate, call, drop), µs.
pub async fn measure(
    component: &Path,
    variant: Variant,
    runs: usize,
    warmup: usize,
) -> anyhow::Result<Summary> {
    let floor = Floor::new(component, variant)?;
    for _ in 0..warmup {
        floor.run().await?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(floor.run().await?);
    }
    Ok(summarize(&mut times))
}
