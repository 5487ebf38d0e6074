//! The `vantage` command line: one module per subcommand.
//!
//! Commands print with `outln!`/`out!` (stdout) and `errln!`/`err!`
//! (stderr), never `println!`: when the reader goes away (`vantage validate
//! | head -1`), stdout's write fails with a broken pipe, the command stops,
//! and `main` exits quietly with [`EXIT_BROKEN_PIPE`]; a closed stderr is
//! ignored.

/// `println!` to stdout that returns the error (`?`) instead of panicking
/// when stdout is closed.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` to stdout that returns the error (`?`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprint!` that ignores a closed stderr instead of panicking.
#[cfg_attr(not(feature = "restore"), allow(unused_macros))] // used by `vantage audit`
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[cfg(feature = "restore")]
mod audit;
mod compile;
#[cfg(feature = "kubernetes")]
mod crds;
mod daemon;
mod demo;
mod inspect;
mod lock;
mod new;
pub mod output;
mod progress;
mod registry;
mod run;
mod test;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code for "the command itself failed" (Nagios UNKNOWN).
pub const EXIT_ERROR: u8 = 3;

/// Exit code when stdout was closed before the command finished writing
/// (128 + SIGPIPE, what a shell shows for a tool killed by a broken pipe).
/// Nothing is printed.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Whether `error` (or one of its causes) is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Vantage: prove from the outside that services work, with checks written as
/// WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "vantage", version, about, long_about = None)]
pub struct Cli {
    /// More host logging on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a check component once and print its result.
    ///
    /// Exit code: 0 pass, 1 degraded, 2 fail, 3 error (Nagios plugin convention).
    Run(Box<run::RunArgs>),
    /// Show a component's metadata, world and declared capabilities (a file
    /// or `oci://…`).
    Inspect(inspect::InspectArgs),
    /// Push a component to an OCI registry as a CNCF Wasm artifact, with
    /// its metadata as annotations; prints the pinned reference.
    Push(registry::PushArgs),
    /// Pull a component from an OCI registry (resolved to its digest,
    /// checked against it) into a file.
    Pull(registry::PullArgs),
    /// Sign a component in an OCI registry with a private key, as `cosign
    /// sign --key` does (the `sha256-<digest>.sig` tag).
    Sign(registry::SignArgs),
    /// Generate a key pair for `vantage sign` (`NAME.key`, `NAME.pub`).
    Keygen(registry::KeygenArgs),
    /// Compile components into the compiled-component cache ahead of time
    /// (files, `oci://` references, or every component of a configuration,
    /// as its daemon compiles them), so no first run pays the compile.
    Compile(compile::CompileArgs),
    /// Pin every `oci://` tag of a configuration to its digest in
    /// `vantage.lock`; the daemon then runs those digests and refuses a tag
    /// the lock does not pin.
    Lock(lock::LockArgs),
    /// Scaffold a new check project (Rust, or `--lang python|js|ts`) that builds to a working component.
    New(new::NewArgs),
    /// Replay cassettes recorded with `vantage run --record` against a check
    /// component, offline and deterministically, and hold each run to the
    /// verdict and assertions its cassette expects (exit code 0 when every
    /// cassette passes, 1 when one does not).
    Test(test::TestArgs),
    /// Validate a `vantage.toml` configuration file.
    Validate(validate::ValidateArgs),
    /// Serve a demo endpoint on 127.0.0.1 and run the official checks against it.
    Demo(demo::DemoArgs),
    /// Run every configured check on its schedule, with metrics, alerts,
    /// history, an HTTP API and a status page.
    ///
    /// SIGHUP or a change of the configuration file reloads it (an invalid
    /// file is rejected and the running configuration kept); SIGTERM or
    /// Ctrl-C stop it gracefully.
    Daemon(Box<daemon::DaemonArgs>),
    /// Read and verify the tamper-evident audit log on S3: `verify` walks
    /// the chain through every object version (exit code 0 when it
    /// verifies, 2 when not), `list` and `show <seq>` read it.
    #[cfg(feature = "restore")]
    Audit(audit::AuditArgs),
    /// Print the `Check` and `RestoreTest` CustomResourceDefinitions
    /// (`vantage crds | kubectl apply -f -`; `deploy/crds/` holds the same).
    #[cfg(feature = "kubernetes")]
    Crds(crds::CrdsArgs),
}

/// How host logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log level when neither `-v` nor `RUST_LOG` says: `info` for the
    /// daemon, `warn` for one-shot commands.
    pub fn default_log_level(&self) -> &'static str {
        let base = u8::from(matches!(self.command, Command::Daemon(_)));
        match self.verbose + base {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    }
}

/// The JSON document a command given `--json` prints on stdout when it
/// fails: `{"error": "…", "causes": ["…"]}`, so a script reading stdout
/// gets JSON on success and on failure alike.
pub fn error_json(error: &anyhow::Error) -> serde_json::Value {
    serde_json::json!({
        "error": error.to_string(),
        "causes": error.chain().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
    })
}

impl Command {
    /// Whether the command was asked for JSON output (`--json`): its
    /// errors are then printed as [`error_json`] too.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Run(args) => args.json,
            Command::Inspect(args) => args.json,
            Command::Demo(args) => args.json,
            Command::Test(args) => args.json,
            _ => false,
        }
    }

    /// Run the subcommand; returns the process exit code.
    pub async fn execute(self) -> anyhow::Result<u8> {
        match self {
            Command::Run(args) => run::execute(*args).await,
            Command::Inspect(args) => inspect::execute(args).await,
            Command::Push(args) => registry::push(args).await,
            Command::Pull(args) => registry::pull(args).await,
            Command::Sign(args) => registry::sign(args).await,
            Command::Keygen(args) => registry::keygen(args),
            Command::Lock(args) => lock::execute(args).await,
            Command::Compile(args) => compile::execute(args).await,
            Command::New(args) => new::execute(args),
            Command::Test(args) => test::execute(args).await,
            Command::Validate(args) => validate::execute(args).await,
            Command::Demo(args) => demo::execute(args).await,
            Command::Daemon(args) => daemon::execute(*args).await,
            #[cfg(feature = "restore")]
            Command::Audit(args) => audit::execute(args).await,
            #[cfg(feature = "kubernetes")]
            Command::Crds(args) => crds::execute(args),
        }
    }
}

/// Options shared by the commands that load components.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// Directory of compiled components (default: the user's cache dir).
    #[arg(long, env = "VANTAGE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the compiled-component cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The compiler: `winch` compiles several times faster (a Python or
    /// JavaScript check in ~2 s instead of ~6 s), `cranelift` makes faster
    /// code. Default: winch for `run` and `test`, cranelift otherwise.
    #[arg(long, env = "VANTAGE_COMPILER", value_name = "cranelift|winch")]
    pub compiler: Option<crate::runtime::engine::Compiler>,
}

impl CacheArgs {
    /// `options` with the compiler asked for, else `default`.
    pub fn engine(
        &self,
        options: crate::runtime::engine::EngineOptions,
        default: crate::runtime::engine::Compiler,
    ) -> crate::runtime::engine::EngineOptions {
        crate::runtime::engine::EngineOptions {
            compiler: self.compiler.unwrap_or(default),
            ..options
        }
    }

    /// The cache directory to use, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            directories::ProjectDirs::from("dev", "vantage", "vantage")
                .map(|d| d.cache_dir().join("components"))
        })
    }
}

/// How one-shot commands reach registries, and which signatures they
/// require.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// A registry (`host:port`) reached over plain HTTP (repeatable);
    /// loopback registries always are (unless given a CA bundle), every
    /// other one is HTTPS.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Trust the CA certificates in FILE (PEM) for the registry HOST, beside
    /// the system's roots (repeatable).
    #[arg(long = "registry-ca", value_name = "HOST=FILE", value_parser = parse_registry_ca)]
    pub registry_ca: Vec<(String, PathBuf)>,
    /// Refuse a registry component unless this public key (PEM) signed it
    /// (repeatable: any one of the keys suffices).
    #[arg(long = "verify-key", value_name = "FILE")]
    pub verify_key: Vec<PathBuf>,
}

impl RegistryArgs {
    /// As a `[registry]` section: the cache bound is the default.
    pub fn to_config(&self) -> crate::config::RegistryConfig {
        crate::config::RegistryConfig {
            insecure: self
                .insecure_registry
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .collect(),
            ca: self.registry_ca.iter().cloned().collect(),
            verify: crate::config::VerifyConfig {
                require: !self.verify_key.is_empty(),
                keys: self.verify_key.clone(),
                rules: Vec::new(),
            },
            ..crate::config::RegistryConfig::default()
        }
    }
}

/// `--registry-ca HOST=FILE`.
fn parse_registry_ca(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((host, file)) if !host.is_empty() && !file.is_empty() => {
            Ok((host.to_ascii_lowercase(), PathBuf::from(file)))
        }
        _ => Err("expected HOST=FILE, e.g. registry.example.com:5000=ca.pem".into()),
    }
}

/// Load `component` (a file or `oci://…`) for a one-shot command; also
/// returns its size in bytes.
async fn load_component(
    runtime: &crate::runtime::Runtime,
    component: &str,
    max_size: u64,
    registry: &RegistryArgs,
    cache: &CacheArgs,
) -> anyhow::Result<(crate::runtime::LoadedCheck, usize)> {
    use anyhow::Context as _;
    let sources =
        crate::components::Components::for_command(&registry.to_config(), max_size, cache.no_cache);
    let fetched = sources
        .fetch(&crate::components::parse_component_arg(component))
        .await
        .map_err(anyhow::Error::msg)?;
    let check = runtime
        .load_bytes(&fetched.source, &fetched.bytes)
        .await
        .with_context(|| format!("cannot load component {}", fetched.source))?;
    Ok((check, fetched.bytes.len()))
}

/// `--max-component-size`.
fn parse_component_size(s: &str) -> Result<u64, String> {
    crate::config::parse_component_size(s).map_err(|e| e.to_string())
}

/// Log to stderr at `level` (`RUST_LOG` overrides), as text or JSON.
pub fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Whatever RUST_LOG says, keep out of the host's log the lines of
    // wasmtime-wasi(-http) that carry guest data verbatim, secrets included:
    // every argument of every WASI call (trace) and every byte written to
    // stdout/stderr (debug). The run's log has the guest's output, redacted.
    let filter = [
        "wasmtime_wasi=debug",
        "wasmtime_wasi_http=debug",
        "wasmtime_wasi::p2::write_stream=info",
    ]
    .into_iter()
    .filter_map(|d| d.parse().ok())
    .fold(filter, |f, d| f.add_directive(d));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
