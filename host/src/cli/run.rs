//! `vantage run`: run one check component once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::output;
use super::{CacheArgs, RegistryArgs};
use crate::capabilities::net::HostResolver;
use crate::capabilities::tape::Tape;
use crate::config::{self, Limits, Mode, SecretSource};
use crate::policy::{AllowList, TARGET_PLACEHOLDER};
use crate::runtime::engine::{Compiler, EngineOptions};
use crate::runtime::{RunSpec, Runtime};

/// Arguments of `vantage run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The check component: a `.wasm` file or `oci://host/repository:tag`
    /// (or `@sha256:…`).
    pub component: String,
    /// A target to probe (repeatable). Each target URL's scheme://host:port is
    /// allowed outbound.
    #[arg(short, long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// A config value, with dotted keys for nesting (repeatable):
    /// `--set expect.status=200`, `--set headers.Accept=application/json`.
    #[arg(short, long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// An extra outbound allow pattern (repeatable), e.g. `https://*.example.com`.
    #[arg(short, long = "allow", value_name = "PATTERN")]
    pub allow: Vec<String>,
    /// Grant a secret (repeatable): `NAME=env:VAR` or `NAME=file:PATH`.
    #[arg(long = "secret", value_name = "NAME=SOURCE", value_parser = parse_secret)]
    pub secrets: Vec<(String, SecretSource)>,
    /// Resolve a host name to a fixed address (repeatable), like curl's
    /// `--resolve`: `--resolve api.example.com:10.0.0.7`.
    #[arg(long = "resolve", value_name = "HOST:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, IpAddr)>,
    /// Resolve host names through this nameserver (`ip` or `ip:port`, default
    /// port 53) instead of the system resolver; `--resolve` still wins.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver)]
    pub resolver: Option<std::net::SocketAddr>,
    /// Let the check make `insecure` TLS requests (certificate not verified;
    /// the verdict is still reported). Denied otherwise.
    #[arg(long)]
    pub allow_insecure: bool,
    /// Wall-clock budget of the run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Memory cap of the check.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub memory: u64,
    /// Refuse a component file larger than this (B, KiB, MiB, GiB, KB, MB,
    /// GB; 64KiB to 4GiB); it is read no further.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    /// Instruction budget (fuel); unlimited when absent.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// CPU time the run may use (e.g. `2s`), apart from `--timeout`;
    /// unlimited when absent.
    #[arg(long, value_parser = parse_duration)]
    pub cpu: Option<Duration>,
    /// Location label reported with the result.
    #[arg(long, default_value = "local", env = "VANTAGE_LOCATION")]
    pub location: String,
    /// Run mode.
    #[arg(long, value_enum, default_value = "edge")]
    pub mode: ModeArg,
    /// Name of the check in the result (default: the component's own name).
    #[arg(long)]
    pub name: Option<String>,
    /// Print one JSON object instead of the human-readable report.
    #[arg(long)]
    pub json: bool,
    /// Record every host interaction of the run (HTTP exchanges with their
    /// timings, TLS handshakes, DNS answers, TCP conversations, clock
    /// readings; secrets redacted) and the verdict to this cassette, for
    /// `vantage test` to replay offline.
    #[arg(long, value_name = "CASSETTE.json")]
    pub record: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// A deep check of a live endpoint.
    Edge,
    /// Validation of a restored backup.
    Restore,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    config::parse_set(s).map_err(|e| e.to_string())
}

fn parse_resolve(s: &str) -> Result<(String, IpAddr), String> {
    let (host, addr) = s
        .split_once(':')
        .ok_or_else(|| format!("expected HOST:ADDR, e.g. api.example.com:10.0.0.7, got {s:?}"))?;
    let addr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|e| format!("invalid address in {s:?}: {e}"))?;
    if host.is_empty() {
        return Err(format!("missing host name in {s:?}"));
    }
    Ok((host.to_ascii_lowercase(), addr))
}

fn parse_resolver(s: &str) -> Result<std::net::SocketAddr, String> {
    crate::capabilities::dns::parse_server(s)
}

fn parse_secret(s: &str) -> Result<(String, SecretSource), String> {
    config::parse_secret(s).map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    config::parse_timeout(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> Result<u64, String> {
    config::parse_memory(s).map_err(|e| e.to_string())
}

/// Run the command.
pub async fn execute(args: RunArgs) -> anyhow::Result<u8> {
    let options = EngineOptions {
        fuel: args.fuel.is_some(),
        ..EngineOptions::default()
    };
    let runtime = Runtime::new(
        &args.cache.engine(options, Compiler::Winch),
        args.cache.dir(),
    )?;
    let (check, _) = super::load_component(
        &runtime,
        &args.component,
        args.max_component_size,
        &args.registry,
        &args.cache,
    )
    .await?;
    // The values given with --set, against the keys the check declares.
    if let Some(keys) = check.config_schema() {
        let problems = crate::schema::check_values(keys, &args.set);
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("--set {}: {}", p.key, p.message))
                .collect();
            anyhow::bail!("invalid configuration:\n  {}", lines.join("\n  "));
        }
    }
    // Targets on the command line are an explicit grant: `{target}` first.
    let entries = std::iter::once(TARGET_PLACEHOLDER).chain(args.allow.iter().map(String::as_str));
    let allow = AllowList::expand(entries, &args.targets, None)
        .map_err(|e| anyhow::anyhow!("--target/--allow: {e}"))?;
    let mut resolver = HostResolver {
        nameserver: args.resolver,
        ..HostResolver::default()
    };
    for (host, addr) in &args.resolve {
        resolver
            .overrides
            .entry(host.clone())
            .or_default()
            .push(*addr);
    }
    let name = args.name.as_deref().unwrap_or(&check.metadata.name);
    let spec = RunSpec::deny_all(name, args.timeout)
        .with_targets(args.targets.clone())
        .with_config(args.set.clone())
        .with_allow(allow)
        .with_secrets(args.secrets.clone())
        .with_limits(Limits {
            timeout: args.timeout,
            memory: args.memory,
            fuel: args.fuel,
            cpu: args.cpu,
        })
        .with_location(args.location.clone())
        .with_mode(match args.mode {
            ModeArg::Edge => Mode::Edge,
            ModeArg::Restore => Mode::Restore,
        })
        .with_resolver(Arc::new(resolver))
        .with_insecure(args.allow_insecure)
        .with_tape(if args.record.is_some() {
            Tape::recording()
        } else {
            Tape::live()
        });
    let result = runtime.run(&check, &spec).await;
    if let Some(path) = &args.record {
        let cassette = super::test::cassette(&check, &spec, &result);
        super::test::write_cassette(path, &cassette)?;
        let (_, complete) = spec.tape.recorded();
        if !complete {
            tracing::warn!(
                "the run made more than {} host calls; the cassette holds the first ones only \
                 and will not replay to the end",
                crate::capabilities::tape::MAX_INTERACTIONS
            );
        }
        errln!(
            "recorded {} interaction(s) to {}",
            cassette.interactions.len(),
            path.display()
        );
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&output::json(&result))?);
    } else {
        out!("{}", output::human(&result));
    }
    Ok(result.status.exit_code() as u8)
}
