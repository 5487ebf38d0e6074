//! The sandbox: loads check components once and runs them, each run in a
//! fresh `Store` with its own limits, capabilities and deadline.
//!
//! Why a fresh `Store` per run: a store frees its instances only when it is
//! dropped, so reusing one across runs grows memory without bound; a new
//! store from an [`InstancePre`] (pooling allocator) costs tens of
//! microseconds.

#[allow(missing_docs)] // generated from the WIT, documented there
pub mod cache;
pub mod engine;
pub mod limits;
pub mod metadata;
pub mod pool;
pub mod wasi;

pub use crate::result::next_run_id;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use self::cache::{CacheOutcome, ComponentCache};
use self::engine::{EngineOptions, EpochTicker};
use self::limits::{CpuMeter, MemoryLimiter, Metered};
use self::metadata::Metadata;
use self::wasi::Capture;
use crate::bindings::common as wit;
use crate::bindings::{self, CheckPre};
use crate::capabilities::net::{HostResolver, NetLimits};
use crate::capabilities::tape::Tape;
use crate::capabilities::{self, Capabilities, Grant};
use crate::config::{Limits, Mode, SecretSource};
use crate::policy::AllowList;
use crate::result::{Assertion, CheckResult, ErrorKind, Measurement, RunError, RunTimings, Status};

/// The world of the current contract, which new checks target. (The host
/// also runs components of the frozen 0.1.0 world: see [`World`].)
pub const WORLD: &str = World::V0_2.name();

/// Extra time given to the run's future beyond the deadline, for the guest to
/// notice an expired host call and return.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Everything that lives in a run's `Store`.
pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    /// The CPU time the run had used when its `cpu` limit (the second)
    /// stopped it.
    cpu_exceeded: Option<(Duration, Duration)>,
    /// Per-run state of every capability.
    pub caps: Capabilities,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::capabilities::CapabilitiesView for RunState {
    fn caps(&mut self) -> &mut Capabilities {
        &mut self.caps
    }
}

impl wasmtime_wasi_http::WasiHttpView for RunState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.caps.wasi_http.ctx,
            table: &mut self.table,
            hooks: &mut self.caps.wasi_http.hooks,
        }
    }
}

/// The process's sandbox: one engine, one linker, one component cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    cache: ComponentCache,
    fuel: bool,
    _ticker: EpochTicker,
}

/// A check compiled and linked once, ready to run many times.
pub struct LoadedCheck {
    /// Where it came from (a path or a registry reference).
    pub source: String,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// What the check says about itself.
    pub metadata: Metadata,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// The interfaces the component imports (e.g. `vantage:check/http@0.2.0`).
    pub imports: Vec<String>,
    /// The interfaces and functions it exports (e.g. `vantage:check/check@0.2.0`).
    pub exports: Vec<String>,
    pre: Pre,
}

impl LoadedCheck {
    /// The world the component targets.
    pub fn world(&self) -> World {
        self.pre.world()
    }
}

impl LoadedCheck {
    /// The configuration keys the check declares with their types, when it
    /// declares typed keys (a `vantage:check@0.2.0` component); the host
    /// checks every configured value against them (see
    /// [`Config::schema_problems`](crate::config::Config::schema_problems)).
    pub fn config_schema(&self) -> Option<&[crate::schema::ConfigKey]> {
        // 0.1.0 keys carry no types (they arrive as untyped text, not
        // repeated): the host never checked them and leaves them to the check.
        (self.world() == World::V0_2).then_some(&self.metadata.config[..])
    }
}

/// One run's inputs: what to check, with what, under which limits.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Configured check name.
    pub check_name: String,
    /// Targets.
    pub targets: Vec<String>,
    /// Flattened config (dotted keys).
    pub config: Vec<(String, String)>,
    /// Outbound allow list (already limited by the operator's ceiling).
    pub allow: Arc<AllowList>,
    /// Granted secrets.
    pub secrets: Vec<(String, SecretSource)>,
    /// Deadline, memory, fuel and CPU time.
    pub limits: Limits,
    /// Location label.
    pub location: String,
    /// Why the check runs.
    pub mode: Mode,
    /// How host names are resolved (with `--resolve`-style overrides).
    pub resolver: Arc<HostResolver>,
    /// Whether the operator allows this check `insecure` TLS requests.
    pub allow_insecure: bool,
    /// Live (the default), recording the run's host calls, or replaying
    /// them from a cassette ([`capabilities::tape`]).
    pub tape: Tape,
}

impl RunSpec {
    /// A spec that grants nothing: no outbound access, no secrets, no config,
    /// no targets, 64 MiB, the given deadline, edge mode. The `with_*`
    /// methods add what a run is granted:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use vantage_runtime::runtime::RunSpec;
    /// let spec = RunSpec::deny_all("api", Duration::from_secs(10))
    ///     .with_targets(vec!["https://api.example.com/healthz".into()])
    ///     .with_config(vec![("expect.status.0".into(), "200".into())])
    ///     .with_location("eu-west");
    /// assert!(spec.allow.is_empty());
    /// ```
    pub fn deny_all(check_name: &str, timeout: Duration) -> Self {
        RunSpec {
            check_name: check_name.to_string(),
            targets: Vec::new(),
            config: Vec::new(),
            allow: Arc::new(AllowList::deny_all()),
            secrets: Vec::new(),
            limits: Limits {
                timeout,
                memory: 64 << 20,
                fuel: None,
                cpu: None,
            },
            location: String::new(),
            mode: Mode::Edge,
            resolver: Arc::default(),
            allow_insecure: false,
            tape: Tape::live(),
        }
    }

    /// The spec of a configured check: its targets, config, allow list,
    /// secrets, limits and mode, run at `location` with `resolver`.
    pub fn for_check(
        spec: &crate::config::CheckSpec,
        location: &str,
        resolver: Arc<HostResolver>,
    ) -> Self {
        RunSpec::deny_all(&spec.name, spec.limits.timeout)
            .with_targets(spec.targets.clone())
            .with_config(spec.config.clone())
            .with_allow(spec.allow.clone())
            .with_secrets(spec.secrets.clone())
            .with_limits(spec.limits.clone())
            .with_location(location)
            .with_mode(spec.mode)
            .with_resolver(resolver)
            .with_insecure(spec.allow_insecure)
    }

    /// The targets.
    pub fn with_targets(mut self, targets: Vec<String>) -> Self {
        self.targets = targets;
        self
    }

    /// The flattened config (dotted keys).
    pub fn with_config(mut self, config: Vec<(String, String)>) -> Self {
        self.config = config;
        self
    }

    /// The outbound allow list (already held to the operator's ceiling).
    pub fn with_allow(mut self, allow: impl Into<Arc<AllowList>>) -> Self {
        self.allow = allow.into();
        self
    }

    /// The granted secrets.
    pub fn with_secrets(mut self, secrets: Vec<(String, SecretSource)>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Deadline, memory, fuel and CPU time.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The location label.
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// Why the check runs.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How host names are resolved.
    pub fn with_resolver(mut self, resolver: Arc<HostResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Whether the operator allows `insecure` TLS requests.
    pub fn with_insecure(mut self, allow_insecure: bool) -> Self {
        self.allow_insecure = allow_insecure;
        self
    }

    /// Record the run's host calls on `tape`, or answer them from it.
    pub fn with_tape(mut self, tape: Tape) -> Self {
        self.tape = tape;
        self
    }
}

impl Runtime {
    /// Build the engine and linker. `cache_dir` holds compiled components
    /// (`None` disables the disk cache).
    pub fn new(options: &EngineOptions, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let engine = engine::build(options)?;
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)?;
        capabilities::tls::warm_up();
        let ticker = EpochTicker::start(&engine);
        Ok(Runtime {
            engine,
            linker,
            cache: ComponentCache::new(cache_dir),
            fuel: options.fuel,
            _ticker: ticker,
        })
    }

    /// The engine (for benchmarks and tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a component from a file of at most
    /// [`DEFAULT_MAX_COMPONENT_SIZE`](cache::DEFAULT_MAX_COMPONENT_SIZE).
    pub async fn load_file(&self, path: &Path) -> anyhow::Result<LoadedCheck> {
        self.load_file_within(path, cache::DEFAULT_MAX_COMPONENT_SIZE)
            .await
    }

    /// Load a component from a file, refusing one larger than `max_size`
    /// bytes (read no further than that).
    pub async fn load_file_within(
        &self,
        path: &Path,
        max_size: u64,
    ) -> anyhow::Result<LoadedCheck> {
        let bytes = cache::read_component(path, max_size)?;
        self.load_bytes(&path.display().to_string(), &bytes)
            .await
            .with_context(|| format!("cannot load component {}", path.display()))
    }

    /// Load a component from bytes: compile (or take from the cache), link
    /// against the host's capabilities, and ask it to describe itself.
    pub async fn load_bytes(&self, source: &str, bytes: &[u8]) -> anyhow::Result<LoadedCheck> {
        cache::check_component_header(bytes).map_err(anyhow::Error::msg)?;
        let (component, cache, digest) = self
            .cache
            .load(&self.engine, bytes)
            .map_err(|e| anyhow::anyhow!("invalid WebAssembly component: {e:#}"))?;
        let imports: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let world = World::of_imports(imports.iter().map(String::as_str))
            .map_err(|why| anyhow::anyhow!("the component does not fit: {why}"))?;
        let misfit = |e: wasmtime::Error| {
            anyhow::anyhow!(
                "{e}: the component does not fit the `{world}` world (this host runs components of {})",
                World::supported()
            )
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(misfit)?;
        let pre = Pre::new(world, instance_pre).map_err(misfit)?;
        // `describe` runs with nothing granted, under small limits.
        let spec = RunSpec::deny_all("describe", Duration::from_secs(5));
        let limits = &spec.limits;
        let (mut store, _out, err) = self.new_store(&spec, Arc::new(CpuMeter::new()));
        let described = async {
            let instance = pre.instantiate(&mut store).await?;
            instance.describe(&mut store).await
        };
        let metadata = match tokio::time::timeout(limits.timeout + DEADLINE_GRACE, described).await
        {
            Ok(Ok(m)) => Metadata::from(m),
            Ok(Err(e)) => anyhow::bail!("`describe` failed: {}", explain(&store, &e, &err).message),
            Err(_) => anyhow::bail!("`describe` did not return within {:?}", limits.timeout),
        };
        Ok(LoadedCheck {
            source: source.to_string(),
            digest,
            metadata,
            cache,
            imports,
            exports,
            pre,
        })
    }

    /// A fresh store for one call of `spec`'s check, with its limits,
    /// deadline and capabilities; `meter` is the call's CPU time, held to
    /// the `cpu` limit.
    fn new_store(
        &self,
        spec: &RunSpec,
        meter: Arc<CpuMeter>,
    ) -> (Store<RunState>, Capture, Capture) {
        let limits = &spec.limits;
        let check_name = spec.check_name.as_str();
        let deadline = Instant::now() + limits.timeout;
        let grant = Grant {
            check_name: spec.check_name.clone(),
            allow: spec.allow.clone(),
            secrets: spec.secrets.clone(),
            deadline,
            net_limits: NetLimits::default(),
            resolver: spec.resolver.clone(),
            allow_insecure: spec.allow_insecure,
            tape: spec.tape.clone(),
        };
        let (stdout, stderr) = (Capture::default(), Capture::default());
        let state = RunState {
            wasi: wasi::context(&stdout, &stderr, spec.tape.replay_start_unix_ms()),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory),
            cpu_exceeded: None,
            caps: Capabilities::new(&grant),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        match (self.fuel, limits.fuel) {
            // An engine that counts fuel needs every store to have some;
            // runs without a budget get an unlimited amount.
            (true, budget) => {
                let _ = store.set_fuel(budget.unwrap_or(u64::MAX));
            }
            (false, Some(_)) => {
                tracing::warn!(
                    check = check_name,
                    "fuel budget ignored: the engine was built without fuel metering"
                )
            }
            (false, None) => {}
        }
        // The deadline and the CPU limit are enforced here, once, for every
        // call: the guest yields to the executor every epoch tick and is
        // interrupted once the deadline has passed or it has computed for
        // longer than its `cpu` limit (so within one tick of either).
        let cpu_limit = limits.cpu;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut store| {
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            if let Some(limit) = cpu_limit {
                let used = meter.used();
                if used >= limit {
                    store.data_mut().cpu_exceeded = Some((used, limit));
                    return Ok(UpdateDeadline::Interrupt);
                }
            }
            Ok(UpdateDeadline::Yield(1))
        });
        (store, stdout, stderr)
    }

    /// Run a loaded check once. Never fails: every host-side problem becomes
    /// a result with [`Status::Error`] and a reason.
    pub async fn run(&self, check: &LoadedCheck, spec: &RunSpec) -> CheckResult {
        self.run_metered(check, spec, Arc::new(CpuMeter::new()))
            .await
    }

    /// [`run`](Self::run), accounting the run's CPU time in `meter` (a new
    /// one per run), which the caller may read while the run goes on (the
    /// guest pool does, to move a check that computes flat out to its
    /// low-priority lane).
    pub async fn run_metered(
        &self,
        check: &LoadedCheck,
        spec: &RunSpec,
        meter: Arc<CpuMeter>,
    ) -> CheckResult {
        let started = Instant::now();
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let run_id = next_run_id(started_unix_ms);
        let (mut store, stdout, stderr) = self.new_store(spec, meter.clone());
        let mut timings = RunTimings::default();
        let outcome = match capabilities::secrets::expand_config(
            &spec.config,
            &mut store.data_mut().caps.secrets,
        ) {
            Err(message) => Err(RunError {
                kind: ErrorKind::Config,
                message,
            }),
            Ok(config) => {
                let context = run_context(spec, config, &run_id);
                call_guest(check, &mut store, &context, spec, &meter, &mut timings)
                    .await
                    .map_err(|e| e.explain(&store, &stderr))
            }
        };
        let panicked = outcome.as_ref().is_err_and(|e| e.kind == ErrorKind::Panic);
        let finished = store.into_data().caps.finish(
            &stdout.text(),
            (!panicked).then(|| stderr.text()).as_deref(),
        );
        timings.http = finished.http;
        timings.tls = finished.tls;
        let mut result = CheckResult {
            check: spec.check_name.clone(),
            status: Status::Error,
            summary: String::new(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            location: spec.location.clone(),
            run_id,
            started_unix_ms,
            assertions: Vec::new(),
            measurements: Vec::new(),
            labels: Vec::new(),
            timings,
            logs: finished.logs,
            error: None,
        };
        match outcome {
            Ok(verdict) => set_verdict(&mut result, verdict),
            Err(e) => {
                // One line; the error keeps the whole message (stderr too).
                result.summary = e.message.lines().next().unwrap_or_default().to_string();
                result.error = Some(e);
            }
        }
        if let Some(message) = spec.tape.divergence() {
            // A replay the check left: whatever it concluded, it concluded
            // from a call the cassette could not answer.
            result.status = Status::Error;
            result.summary = message.clone();
            result.error = Some(RunError {
                kind: ErrorKind::Host,
                message,
            });
        }
        finished.revealed.redact_result(&mut result);
        spec.tape.redact(&finished.revealed);
        result
    }
}

/// What the guest's `run` export receives.
fn run_context(spec: &RunSpec, config: Vec<(String, String)>, run_id: &str) -> wit::RunContext {
    wit::RunContext {
        check_name: spec.check_name.clone(),
        targets: spec.targets.clone(),
        config,
        location: spec.location.clone(),
        mode: match spec.mode {
            Mode::Edge => wit::Mode::Edge,
            Mode::Restore => wit::Mode::Restore,
        },
        timeout_ms: spec.limits.timeout.as_millis() as u64,
        run_id: run_id.to_string(),
    }
}

/// Why a guest call gave no verdict, before it is explained.
enum CallError {
    /// The call trapped or failed (explained from the store and stderr).
    Trap(wasmtime::Error),
    /// Already explained.
    Known(RunError),
}

impl CallError {
    fn explain(self, store: &Store<RunState>, stderr: &Capture) -> RunError {
        match self {
            CallError::Trap(e) => explain(store, &e, stderr),
            CallError::Known(e) => e,
        }
    }
}

/// Instantiate the check and call its `run` export under the run's
/// deadline (plus [`DEADLINE_GRACE`]), metering its CPU time; record the
/// instantiation and run times in `timings`.
async fn call_guest(
    check: &LoadedCheck,
    store: &mut Store<RunState>,
    context: &wit::RunContext,
    spec: &RunSpec,
    meter: &Arc<CpuMeter>,
    timings: &mut RunTimings,
) -> Result<wit::CheckResult, CallError> {
    let mut run_started = None;
    let call = async {
        let t = Instant::now();
        let instance = check.pre.instantiate(store).await?;
        timings.instantiate_ms = t.elapsed().as_secs_f64() * 1000.0;
        run_started = Some(Instant::now());
        instance.run(store, context).await
    };
    let call = Metered::new(call, meter);
    let outcome = tokio::time::timeout(spec.limits.timeout + DEADLINE_GRACE, call).await;
    timings.run_ms = run_started
        .map(|t| t.elapsed().as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    match outcome {
        Ok(Ok(verdict)) => match oversized(&verdict).or_else(|| bad_labels(&verdict)) {
            None => Ok(verdict),
            Some(message) => Err(CallError::Known(RunError {
                kind: ErrorKind::ResultTooLarge,
                message,
            })),
        },
        Ok(Err(e)) => Err(CallError::Trap(e)),
        Err(_) => Err(CallError::Known(RunError {
            kind: ErrorKind::Deadline,
            message: format!(
                "deadline of {} exceeded",
                humantime::format_duration(spec.limits.timeout)
            ),
        })),
    }
}

/// Copy the guest's verdict into `result`.
fn set_verdict(result: &mut CheckResult, v: wit::CheckResult) {
    result.status = match v.status {
        wit::Status::Pass => Status::Pass,
        wit::Status::Degraded => Status::Degraded,
        wit::Status::Fail => Status::Fail,
    };
    result.summary = v.summary;
    result.assertions = v
        .assertions
        .into_iter()
        .map(|a| Assertion {
            name: a.name,
            passed: a.state != wit::AssertionState::Fail,
            warn: a.state == wit::AssertionState::Warn,
            detail: a.detail,
            duration_ms: a.duration_ms,
        })
        .collect();
    result.measurements = v
        .measurements
        .into_iter()
        .map(|m| Measurement {
            name: m.name,
            value: m.value,
            unit: m.unit,
            labels: m.labels.into_iter().collect(),
        })
        .collect();
    result.labels = v.labels;
}

/// Why a verdict is too large to keep (see [`limits::oversized_result`]).
fn oversized(v: &wit::CheckResult) -> Option<String> {
    limits::oversized_result(
        &v.summary,
        v.assertions.iter().map(|a| (a.name.len(), a.detail.len())),
        v.measurements.iter().map(|m| (m.name.len(), m.unit.len())),
        v.labels.iter().map(|(k, v)| (k.len(), v.len())),
    )
}

/// Why a verdict's measurement labels cannot be exported (see
/// [`limits::bad_measurement_labels`]).
fn bad_labels(v: &wit::CheckResult) -> Option<String> {
    limits::bad_measurement_labels(
        v.measurements
            .iter()
            .map(|m| (m.name.as_str(), m.labels.as_slice())),
    )
}

/// Turn a failed call into a reason that names the limit, the trap or the panic.
fn explain(store: &Store<RunState>, error: &wasmtime::Error, stderr: &Capture) -> RunError {
    if let Some(size) = store.data().limiter.refused {
        return RunError {
            kind: ErrorKind::Memory,
            message: format!(
                "memory limit of {} exceeded (the check tried to grow its memory to {})",
                format_bytes(store.data().limiter_max()),
                format_bytes(size as u64)
            ),
        };
    }
    if let Some((used, limit)) = store.data().cpu_exceeded {
        return RunError {
            kind: ErrorKind::Cpu,
            message: format!(
                "CPU limit of {} exceeded: the check computed for {} (wall-clock timeout not reached)",
                humantime::format_duration(limit),
                humantime::format_duration(round_ms(used))
            ),
        };
    }
    let stderr = stderr.text();
    if let Some(panic) = panic_message(&stderr) {
        // What the guest wrote before the panic line (a Python traceback,
        // the check's own last words).
        let before = stderr.find("panicked at ").map_or("", |at| {
            let line_start = stderr[..at].rfind('\n').map_or(0, |n| n + 1);
            &stderr[..line_start]
        });
        // componentize-py's runtime panics (at its own source line) when a
        // Python exception escapes; the traceback above says where.
        let what = if panic.ends_with("Python function threw an unexpected exception") {
            "uncaught Python exception".to_string()
        } else {
            format!("check panicked: {panic}")
        };
        return RunError {
            kind: ErrorKind::Panic,
            message: with_stderr(what, before),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunError {
            kind: ErrorKind::Fuel,
            message: "fuel exhausted: the check ran more instructions than its budget allows"
                .into(),
        },
        Some(Trap::Interrupt) => RunError {
            kind: ErrorKind::Deadline,
            message: "deadline exceeded: the check was interrupted while running".into(),
        },
        Some(trap) => {
            // componentize-js (SpiderMonkey) prints a thrown error and its
            // stack, then aborts through this line.
            const JS_ABORT: &str = "Redirecting call to abort() to mozalloc_abort";
            let (what, stderr) = match stderr.rfind(JS_ABORT) {
                Some(at) => ("uncaught JavaScript error".to_string(), &stderr[..at]),
                None => (format!("check trapped: {trap}"), stderr.as_str()),
            };
            RunError {
                kind: ErrorKind::Trap,
                message: with_stderr(what, stderr),
            }
        }
        None => RunError {
            kind: ErrorKind::Host,
            message: format!("{error:#}"),
        },
    }
}

impl RunState {
    fn limiter_max(&self) -> u64 {
        self.limiter.max_bytes() as u64
    }
}

/// `d` to whole milliseconds, for messages.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The most lines of the guest's stderr a trap's or panic's error carries.
pub const STDERR_LINES: usize = 20;

/// `message`, then the last lines of `stderr` when there are any: a
/// JavaScript error and its stack, a Python traceback, the check's last
/// words before it failed.
fn with_stderr(message: String, stderr: &str) -> String {
    let lines = wasi::last_lines(stderr, STDERR_LINES);
    if lines.is_empty() {
        return message;
    }
    format!("{message}\nlast lines on stderr:\n{}", lines.join("\n"))
}

/// Extract the message of a Rust panic from what the guest wrote to stderr:
/// `panicked at src/lib.rs:3:5: the message`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let rest = &stderr[start..];
    let (location, message) = rest.split_once(":\n")?;
    let message: Vec<&str> = message
        .lines()
        .take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    Some(format!("{location}: {}", message.join("\n").trim()))
}

/// Human-readable byte size (binary units).
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A version of the `vantage:check` world this host runs components of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    /// `vantage:check@0.2.0`, the current contract (`wit/`).
    V0_2,
    /// `vantage:check@0.1.0`, frozen (`runtime/wit-0.1.0`): its components
    /// run unchanged, their host calls adapted to the 0.2.0 implementations
    /// ([`capabilities::compat_v0_1`]).
    V0_1,
}

impl World {
    /// Every world this host runs, newest first.
    pub const ALL: [World; 2] = [World::V0_2, World::V0_1];

    /// The package version, e.g. `0.2.0`.
    pub const fn version(self) -> &'static str {
        match self {
            World::V0_2 => "0.2.0",
            World::V0_1 => "0.1.0",
        }
    }

    /// The world's full name, e.g. `vantage:check/check@0.2.0`.
    pub const fn name(self) -> &'static str {
        match self {
            World::V0_2 => "vantage:check/check@0.2.0",
            World::V0_1 => "vantage:check/check@0.1.0",
        }
    }

    /// The world a component targets, from the `vantage:check` interfaces
    /// it imports (every component built from the WIT imports at least the
    /// interface of the types its exports use). A component importing none
    /// is taken for the current world, and linking says what it lacks.
    pub fn of_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Result<World, String> {
        let mut found: Vec<(&str, &str)> = imports
            .into_iter()
            .filter_map(|name| {
                let (_, version) = name.strip_prefix("vantage:check/")?.split_once('@')?;
                Some((version, name))
            })
            .collect();
        found.sort_unstable();
        found.dedup_by_key(|(version, _)| *version);
        match found.as_slice() {
            [] => Ok(World::V0_2),
            [(version, name)] => World::ALL
                .into_iter()
                .find(|w| w.version() == *version)
                .ok_or_else(|| {
                    format!(
                        "it imports {name}: it was built for vantage:check@{version}; this host runs {}",
                        World::supported()
                    )
                }),
            several => Err(format!(
                "it imports interfaces of several versions of vantage:check ({}); a check targets one world, and this host runs {}",
                several
                    .iter()
                    .map(|(_, name)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
                World::supported()
            )),
        }
    }
}

impl World {
    /// The worlds this host runs, for messages:
    /// `vantage:check@0.2.0 and vantage:check@0.1.0`.
    pub fn supported() -> String {
        World::ALL
            .iter()
            .map(|w| format!("vantage:check@{}", w.version()))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A component linked for the world it targets.
enum Pre {
    V0_2(CheckPre<RunState>),
    V0_1(bindings::v0_1::CheckPre<RunState>),
}

/// An instance of a check, of either world.
enum Instance {
    V0_2(bindings::Check),
    V0_1(bindings::v0_1::Check),
}

impl Pre {
    fn new(world: World, pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        Ok(match world {
            World::V0_2 => Pre::V0_2(CheckPre::new(pre)?),
            World::V0_1 => Pre::V0_1(bindings::v0_1::CheckPre::new(pre)?),
        })
    }

    fn world(&self) -> World {
        match self {
            Pre::V0_2(_) => World::V0_2,
            Pre::V0_1(_) => World::V0_1,
        }
    }

    async fn instantiate(&self, store: &mut Store<RunState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_2(pre) => Instance::V0_2(pre.instantiate_async(store).await?),
            Pre::V0_1(pre) => Instance::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

impl Instance {
    /// `describe`, in the current world's terms.
    async fn describe(&self, store: &mut Store<RunState>) -> wasmtime::Result<wit::Metadata> {
        match self {
            Instance::V0_2(check) => check.call_describe(store).await,
            Instance::V0_1(check) => Ok(check.call_describe(store).await?.into()),
        }
    }

    /// `run`, in the current world's terms.
    async fn run(
        &self,
        store: &mut Store<RunState>,
        context: &wit::RunContext,
    ) -> wasmtime::Result<wit::CheckResult> {
        match self {
            Instance::V0_2(check) => check.call_run(store, context).await,
            Instance::V0_1(check) => {
                Ok(check.call_run(store, &context.clone().into()).await?.into())
            }
        }
    }
}

/// Components start with the wasm magic and a layer/version word whose layer is 1.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_is_extracted() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:10:5:\nfixture panicked: 42\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).unwrap(),
            "panicked at src/lib.rs:10:5: fixture panicked: 42"
        );
        assert_eq!(panic_message("nothing here"), None);
    }

    #[test]
    fn bytes_are_formatted() {
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12), "12 B");
    }

    #[test]
    fn compat_the_world_is_read_from_the_vantage_imports() {
        let world = |imports: &[&str]| World::of_imports(imports.iter().copied());
        let wasi = "wasi:cli/stdout@0.2.6";
        assert_eq!(world(&[wasi, "vantage:check/types@0.1.0"]), Ok(World::V0_1));
        assert_eq!(
            world(&[
                "vantage:check/common@0.2.0",
                "vantage:check/http@0.2.0",
                wasi
            ]),
            Ok(World::V0_2)
        );
        // No vantage import: linking against the current world says what is missing.
        assert_eq!(world(&[wasi]), Ok(World::V0_2));
        assert_eq!(
            world(&["vantage:check/log@0.3.0"]).unwrap_err(),
            "it imports vantage:check/log@0.3.0: it was built for vantage:check@0.3.0; \
             this host runs vantage:check@0.2.0 and vantage:check@0.1.0"
        );
        let mixed = world(&["vantage:check/types@0.1.0", "vantage:check/http@0.2.0"]).unwrap_err();
        assert!(
            mixed.contains("several versions of vantage:check (vantage:check/types@0.1.0, vantage:check/http@0.2.0)"),
            "{mixed}"
        );
        assert_eq!(WORLD, "vantage:check/check@0.2.0");
        assert_eq!(World::V0_1.to_string(), "vantage:check/check@0.1.0");
    }

    #[test]
    fn component_magic_is_recognised() {
        assert!(cache::check_component_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(cache::check_component_header(b"\0asm\x01\0\0\0rest").is_err());
        assert!(cache::check_component_header(b"hello").is_err());
    }
}
