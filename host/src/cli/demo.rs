//! `vantage demo`: the main job on an embedded default. Serves a small
//! application on 127.0.0.1 and runs the official `http` and `healthz` checks
//! against it, so a new user sees real results without any external service.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

use super::CacheArgs;
use super::output;
use crate::config::Limits;
use crate::policy::AllowList;
use crate::runtime::engine::EngineOptions;
use crate::runtime::{RunSpec, Runtime};

/// Arguments of `vantage demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory holding the official checks (`http.wasm`, `healthz.wasm`).
    #[arg(long, env = "VANTAGE_CHECKS_DIR", value_name = "DIR")]
    pub checks_dir: Option<PathBuf>,
    /// Print JSON results, one per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Where `cd checks && cargo build --release` puts the official checks.
pub fn default_checks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../checks/target/wasm32-wasip2/release")
}

/// The demo application: a health document, a readiness probe and a JSON API.
fn app() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async {
                axum::Json(serde_json::json!({
                    "status": "ok",
                    "checks": { "database": { "status": "ok" }, "cache": { "status": "ok" } }
                }))
            }),
        )
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/api/items",
            get(|| async {
                axum::Json(
                    serde_json::json!({ "items": [{ "id": 1, "name": "first" }], "total": 1 }),
                )
            }),
        )
}

/// Run the command.
pub async fn execute(args: DemoArgs) -> anyhow::Result<u8> {
    let dir = args.checks_dir.clone().unwrap_or_else(default_checks_dir);
    let http_wasm = dir.join("http.wasm");
    let healthz_wasm = dir.join("healthz.wasm");
    if !http_wasm.exists() || !healthz_wasm.exists() {
        anyhow::bail!(
            "the official checks are not built in {}; build them with: (cd checks && cargo build --release)",
            dir.display()
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app()).await });
    let base = format!("http://{addr}");
    if !args.json {
        outln!("Demo application listening on {base}\n");
    }

    let runtime = Runtime::new(&EngineOptions::default(), args.cache.dir())?;
    let allow = Arc::new(AllowList::parse([format!("http://{addr}").as_str()])?);
    let limits = Limits {
        timeout: Duration::from_secs(10),
        memory: 64 << 20,
        fuel: None,
        cpu: None,
    };
    let set = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let runs = [
        (
            &http_wasm,
            RunSpec::deny_all("demo-api", limits.timeout)
                .with_targets(vec![format!("{base}/api/items")])
                .with_config(set(&[
                    ("expect.status.0", "200"),
                    ("expect.headers.content-type", "application/json"),
                    ("expect.json./total", "1"),
                    ("expect.body_contains.0", "first"),
                    ("latency.degraded", "500ms"),
                    ("latency.max", "2s"),
                ]))
                .with_allow(allow.clone())
                .with_limits(limits.clone())
                .with_location("demo"),
        ),
        (
            &healthz_wasm,
            RunSpec::deny_all("demo-health", limits.timeout)
                .with_targets(vec![format!("{base}/healthz")])
                .with_allow(allow.clone())
                .with_limits(limits.clone())
                .with_location("demo"),
        ),
    ];
    let mut worst = 0u8;
    for (wasm, spec) in &runs {
        let check = runtime.load_file(wasm).await?;
        let result = runtime.run(&check, spec).await;
        if args.json {
            outln!("{}", serde_json::to_string(&output::json(&result))?);
        } else {
            outln!("{}", output::human(&result));
        }
        worst = worst.max(result.status.exit_code() as u8);
    }
    server.abort();
    Ok(worst)
}
