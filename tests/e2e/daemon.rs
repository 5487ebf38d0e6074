//! The real `vantage daemon` binary, end to end: it runs the official
//! checks on their schedules against test servers on 127.0.0.1, a real
//! Prometheus scrapes its `/metrics`, a real Alertmanager receives its
//! alerts, and the tests drive it with SIGHUP, SIGTERM and edits of its
//! configuration file.
//!
//! Each test writes its own `vantage.toml` into a temp dir (the data dir is
//! there too) and starts the daemon as a direct child on a free port (see
//! [`Daemon`]); the daemon's stderr goes to a file that failures print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

use crate::servers::{
    Alertmanager, Prometheus, free_port, get_json, http_get, start_prometheus, wait_until,
};
use crate::support::{cache_dir, start_target, wasm};

/// The location label every test daemon runs with.
const LOCATION: &str = "e2e-dc1";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A `[[check]]` running the official `http` check against `target` every
/// `every`, allowed to reach exactly its target's origin; `extra` is added
/// to the table as is (more keys, then e.g. a `[check.config]` table).
pub(crate) fn http_check(name: &str, every: &str, target: &str, extra: &str) -> String {
    format!(
        "\n[[check]]\nname = \"{name}\"\ncomponent = \"{}\"\nevery = \"{every}\"\n\
         targets = [\"{target}\"]\nallow = [\"{{target}}\"]\n{extra}\n",
        wasm("http").display()
    )
}

/// A `vantage daemon` process, a direct child of the test, killed (by PID)
/// on drop. Its configuration is `<dir>/vantage.toml`: a `[global]` table
/// (location [`LOCATION`], `listen` on a free port, `data_dir` =
/// `<dir>/data`, plus the test's own global keys) followed by the test's
/// checks and other tables.
pub(crate) struct Daemon {
    child: Child,
    port: u16,
    dir: PathBuf,
    global: String,
    stderr: PathBuf,
}

impl Daemon {
    /// The configuration file in `dir`.
    fn config_path(dir: &Path) -> PathBuf {
        dir.join("vantage.toml")
    }

    /// The whole configuration text for `body` (location [`LOCATION`]
    /// unless `global` sets one).
    fn config_text(dir: &Path, port: u16, global: &str, body: &str) -> String {
        let location = if global.contains("location =") {
            String::new()
        } else {
            format!("location = \"{LOCATION}\"\n")
        };
        format!(
            "[global]\n{location}listen = \"127.0.0.1:{port}\"\n\
             data_dir = \"{}\"\n{global}\n{body}",
            dir.join("data").display()
        )
    }

    /// Write the configuration and start the daemon with `args` (e.g.
    /// `--no-watch`), without waiting for it.
    fn spawn(dir: &Path, global: &str, body: &str, args: &[&str]) -> Daemon {
        Self::spawn_with_env(dir, global, body, args, &[])
    }

    /// [`Daemon::spawn`] with extra environment variables.
    pub(crate) fn spawn_with_env(
        dir: &Path,
        global: &str,
        body: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let port = free_port();
        let config = Self::config_path(dir);
        std::fs::write(&config, Self::config_text(dir, port, global, body)).unwrap();
        // A restart in the same dir keeps the earlier log next to the new one.
        let stderr = (0..)
            .map(|i| dir.join(format!("daemon-{i}.stderr")))
            .find(|p| !p.exists())
            .unwrap();
        let child = Command::new(crate::support::vantage_bin())
            .arg("daemon")
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("VANTAGE_CACHE_DIR", cache_dir())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("VANTAGE_LISTEN")
            .env_remove("VANTAGE_DATA_DIR")
            .env_remove("VANTAGE_LOCATION")
            .env_remove("VANTAGE_CONFIG")
            .env_remove("VANTAGE_COMPILER")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting vantage daemon");
        Daemon {
            child,
            port,
            dir: dir.to_path_buf(),
            global: global.to_string(),
            stderr,
        }
    }

    /// Start the daemon and wait until it has started its checks (it says
    /// so on stderr) and its `/healthz` answers.
    pub(crate) fn start(dir: &Path, global: &str, body: &str, args: &[&str]) -> Daemon {
        Self::start_with_env(dir, global, body, args, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub(crate) fn start_with_env(
        dir: &Path,
        global: &str,
        body: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut daemon = Self::spawn_with_env(dir, global, body, args, env);
        let url = format!("{}/healthz", daemon.url());
        wait_until("the daemon's start", Duration::from_secs(30), || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "the daemon exited at start-up ({status}); stderr:\n{}",
                    daemon.stderr()
                );
            }
            if !daemon.stderr().contains("status page http://") {
                return (None, "no start-up line on stderr yet".to_string());
            }
            match http_get(&url) {
                Ok((200, body)) => (Some(()), body),
                other => (None, format!("{other:?}")),
            }
        });
        daemon
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as Prometheus targets it.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The configuration file.
    fn config(&self) -> PathBuf {
        Self::config_path(&self.dir)
    }

    /// Replace the configuration's body (the `[global]` table is kept).
    fn rewrite(&self, body: &str) -> String {
        let text = Self::config_text(&self.dir, self.port, &self.global, body);
        std::fs::write(self.config(), &text).unwrap();
        text
    }

    /// `GET path` (e.g. `/api/v1/checks`) as JSON; panics unless 200.
    pub(crate) fn api(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.url()))
    }

    /// `/metrics` as text.
    pub(crate) fn metrics(&self) -> String {
        let (status, body) = http_get(&format!("{}/metrics", self.url())).unwrap();
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }

    /// The names `/api/v1/checks` lists.
    pub(crate) fn check_names(&self) -> Vec<String> {
        self.api("/api/v1/checks")
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// What the daemon wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    pub(crate) fn sighup(&self) {
        self.signal("HUP");
    }

    pub(crate) fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Wait for the process to exit, at most `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "the daemon did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait until stderr contains `needle`.
    pub(crate) fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        wait_until(
            &format!("{needle:?} on the daemon's stderr"),
            timeout,
            || {
                let text = self.stderr();
                (text.contains(needle).then(|| text.clone()), text)
            },
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- vantage daemon stderr ({}) ----\n{}\n---- end of daemon stderr ----",
                self.stderr.display(),
                self.stderr()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `check`'s object in `/api/v1/checks`.
pub(crate) fn check_of(daemon: &Daemon, check: &str) -> Value {
    daemon.api(&format!("/api/v1/checks/{check}"))
}

/// The board's run count of `check`.
pub(crate) fn runs_of(daemon: &Daemon, check: &str) -> u64 {
    check_of(daemon, check)["runs"].as_u64().unwrap()
}

/// Wait until `check` has finished at least `n` runs (board count).
pub(crate) fn wait_runs(daemon: &Daemon, check: &str, n: u64, timeout: Duration) -> u64 {
    wait_until(&format!("{n} runs of {check}"), timeout, || {
        let runs = runs_of(daemon, check);
        ((runs >= n).then_some(runs), runs.to_string())
    })
}

/// Stored runs of `check`, newest first.
fn stored_runs(daemon: &Daemon, check: &str) -> Vec<Value> {
    match daemon.api(&format!("/api/v1/checks/{check}/runs?limit=1000")) {
        Value::Array(runs) => runs,
        other => panic!("runs of {check}: not an array: {other}"),
    }
}

/// The value of the series of `metric` whose labels include `labels` in
/// the Prometheus text `text`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['{', ' '])
                .next()
                .is_some_and(|name| name == metric)
        })
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Prometheus' result rows, by their `check` label: `(location, value)`.
fn by_check(result: &Value) -> std::collections::BTreeMap<String, (String, f64)> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let metric = &row["metric"];
            let value = row["value"][1].as_str().unwrap().parse::<f64>().unwrap();
            (
                metric["check"].as_str().unwrap_or_default().to_string(),
                (
                    metric["location"].as_str().unwrap_or_default().to_string(),
                    value,
                ),
            )
        })
        .collect()
}

/// Start an axum app on 127.0.0.1; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// 1. A real Prometheus scraping the daemon sees every check's
///    blackbox-style gauges and Vantage's counters, labelled with the
///    configured location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_daemon() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let body = [
        http_check("web-a", "1s", &format!("{target}/healthz"), ""),
        http_check("web-b", "1s", &format!("{target}/healthz"), ""),
        http_check("broken", "1s", &format!("{target}/error"), ""),
    ]
    .concat();
    let daemon = Daemon::start(dir.path(), "", &body, &[]);
    let prometheus = start_prometheus(&[daemon.addr()], "1s");
    let timeout = Duration::from_secs(20);

    let success = prometheus.wait_for("probe_success{job=\"vantage\"}", timeout, |r| {
        r.as_array().is_some_and(|rows| rows.len() == 3)
    });
    let success = by_check(&success);
    for (check, expect) in [("web-a", 1.0), ("web-b", 1.0), ("broken", 0.0)] {
        let (location, value) = &success[check];
        assert_eq!(location, LOCATION, "{check}: {success:?}");
        assert_eq!(*value, expect, "probe_success of {check}: {success:?}");
    }

    let codes = prometheus.wait_for("probe_http_status_code{job=\"vantage\"}", timeout, |r| {
        r.as_array().is_some_and(|rows| rows.len() == 3)
    });
    let codes = by_check(&codes);
    assert_eq!(codes["web-a"], (LOCATION.to_string(), 200.0));
    assert_eq!(codes["web-b"], (LOCATION.to_string(), 200.0));
    assert_eq!(codes["broken"], (LOCATION.to_string(), 500.0));

    // Counters: passing runs of the good checks, failing runs of the bad one.
    let passes = prometheus.wait_for(
        "vantage_check_runs_total{job=\"vantage\",status=\"pass\"}",
        timeout,
        |r| r.as_array().is_some_and(|rows| rows.len() == 2),
    );
    let passes = by_check(&passes);
    for check in ["web-a", "web-b"] {
        assert_eq!(passes[check].0, LOCATION);
        assert!(passes[check].1 >= 1.0, "{passes:?}");
    }
    let fails = prometheus.wait_for(
        "vantage_check_runs_total{job=\"vantage\",status=\"fail\"}",
        timeout,
        |r| r.as_array().is_some_and(|rows| rows.len() == 1),
    );
    let fails = by_check(&fails);
    assert_eq!(fails["broken"].0, LOCATION);
    assert!(fails["broken"].1 >= 1.0, "{fails:?}");

    // The counter grows with each run Prometheus sees.
    let first = fails["broken"].1;
    prometheus.wait_for(
        "vantage_check_runs_total{job=\"vantage\",check=\"broken\",status=\"fail\"}",
        timeout,
        |r| Prometheus::scalar(r).is_some_and(|v| v > first),
    );
    let configured = prometheus.query("vantage_checks_configured{job=\"vantage\"}");
    assert_eq!(Prometheus::scalar(&configured), Some(3.0), "{configured}");
}

/// 2. A check against a server the test turns off and on: Alertmanager
///    shows the daemon's alert while it is down, and no longer once it
///    recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_sees_the_alert_fire_and_resolve() {
    let healthy = Arc::new(AtomicBool::new(true));
    let app = Router::new()
        .route(
            "/healthz",
            get(|State(healthy): State<Arc<AtomicBool>>| async move {
                if healthy.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "down")
                }
            }),
        )
        .with_state(healthy.clone());
    let target = serve(app).await;
    let alertmanager = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}\n[alerts]\nalertmanager = [\"{}\"]\nresend = \"1s\"\n",
        http_check(
            "flappy",
            "1s",
            &format!("{target}/healthz"),
            "severity = \"page\""
        ),
        alertmanager.url()
    );
    let daemon = Daemon::start(dir.path(), "", &body, &[]);
    let timeout = Duration::from_secs(15);

    wait_until("flappy up", timeout, || {
        let state = check_of(&daemon, "flappy")["state"].clone();
        ((state == "up").then_some(()), state.to_string())
    });
    assert!(
        alertmanager.alerts().is_empty(),
        "{:?}",
        alertmanager.alerts()
    );

    healthy.store(false, Ordering::SeqCst);
    let alert = wait_until("an active alert for flappy", timeout, || {
        let alert = alertmanager.alert("flappy");
        let active = alert
            .as_ref()
            .is_some_and(|a| a["status"]["state"] == "active");
        (active.then(|| alert.clone().unwrap()), format!("{alert:?}"))
    });
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "VantageCheckFailing", "{alert:#}");
    assert_eq!(labels["check"], "flappy", "{alert:#}");
    assert_eq!(labels["location"], LOCATION, "{alert:#}");
    assert_eq!(labels["severity"], "page", "{alert:#}");
    let generator = alert["generatorURL"].as_str().unwrap();
    assert!(
        generator.starts_with(&format!("{}/", daemon.url())) && generator.contains("flappy"),
        "generatorURL {generator} does not point at the daemon {}",
        daemon.url()
    );
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("500"), "{alert:#}");
    assert_eq!(check_of(&daemon, "flappy")["state"], "down");

    healthy.store(true, Ordering::SeqCst);
    wait_until("flappy's alert resolved", timeout, || {
        let alert = alertmanager.alert("flappy");
        (alert.is_none().then_some(()), format!("{alert:?}"))
    });
    assert_eq!(check_of(&daemon, "flappy")["state"], "up");
}

/// Planned start times of `check`'s stored runs, oldest first.
fn planned_times(daemon: &Daemon, check: &str) -> Vec<u64> {
    let mut planned: Vec<u64> = stored_runs(daemon, check)
        .iter()
        .map(|r| r["planned_unix_ms"].as_u64().unwrap())
        .collect();
    planned.sort_unstable();
    planned
}

/// Every planned start of an `every = "1s"` check is on one grid: no
/// duplicates, gaps a whole number of periods, and the gaps beyond one
/// period are exactly the skips the daemon counted.
fn assert_on_grid(daemon: &Daemon, check: &str) -> Vec<u64> {
    let skipped = || check_of(daemon, check)["skipped_overlap"].as_u64().unwrap();
    // The skip count and the runs, read with no run finishing in between.
    let (planned, skipped) =
        wait_until("a stable read of the runs", Duration::from_secs(10), || {
            let before = skipped();
            let planned = planned_times(daemon, check);
            let after = skipped();
            (
                (before == after).then_some((planned, after)),
                format!("{before} != {after}"),
            )
        });
    let mut missing = 0;
    for pair in planned.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap > 0 && gap % 1000 == 0,
            "{check}: planned starts off the 1 s grid: {planned:?}"
        );
        missing += gap / 1000 - 1;
    }
    assert_eq!(
        missing, skipped,
        "{check}: gaps in the planned starts {planned:?} that are not counted skips"
    );
    planned
}

/// 3. SIGHUP reloads: an added check appears, a changed check takes its new
///    configuration, an unchanged check keeps its task (run count and
///    schedule grid); an invalid file is rejected with file, line and key,
///    and the daemon keeps running the last good configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_keeps_the_running_config_on_errors() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let healthz = format!("{target}/healthz");
    let a = http_check("a", "1s", &healthz, "");
    let b_old = http_check("b", "1s", &healthz, "");
    let mut daemon = Daemon::start(dir.path(), "", &format!("{a}{b_old}"), &["--no-watch"]);
    let timeout = Duration::from_secs(15);

    wait_runs(&daemon, "a", 2, timeout);
    wait_runs(&daemon, "b", 1, timeout);
    let before: Vec<String> = stored_runs(&daemon, "a")
        .iter()
        .map(|r| r["result"]["run_id"].as_str().unwrap().to_string())
        .collect();

    // B now probes /error (a visible change of its config); C is new.
    let b_new = http_check("b", "1s", &format!("{target}/error"), "");
    let c = http_check("c", "1s", &healthz, "");
    daemon.rewrite(&format!("{a}{b_new}{c}"));
    // --no-watch: the edit alone changes nothing.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(daemon.check_names(), ["a", "b"]);

    let runs_before = runs_of(&daemon, "a");
    let reloaded_at = now_ms();
    daemon.sighup();
    wait_until("c listed after SIGHUP", timeout, || {
        let names = daemon.check_names();
        (
            names.contains(&"c".to_string()).then_some(()),
            format!("{names:?}"),
        )
    });
    assert_eq!(daemon.check_names(), ["a", "b", "c"]);
    // A's task was kept: its run count goes on from where it was.
    let mut last = runs_before;
    let deadline = runs_before + 3;
    while last < deadline {
        let runs = runs_of(&daemon, "a");
        assert!(
            runs >= last,
            "a's run count went back from {last} to {runs}"
        );
        last = runs;
        std::thread::sleep(Duration::from_millis(100));
    }
    // B's new target is what runs now.
    wait_until("b probing /error", timeout, || {
        let b = check_of(&daemon, "b");
        let ok = b["targets"][0].as_str().unwrap().ends_with("/error")
            && b["last"]["result"]["status"] == "fail";
        (ok.then_some(()), b.to_string())
    });
    wait_runs(&daemon, "c", 1, timeout);

    // A's history spans the reload, keeps every earlier run, on one grid.
    let after = stored_runs(&daemon, "a");
    for id in &before {
        assert!(
            after.iter().any(|r| r["result"]["run_id"] == id.as_str()),
            "run {id} of a lost across the reload"
        );
    }
    let planned = assert_on_grid(&daemon, "a");
    assert!(
        planned.first().unwrap() < &reloaded_at && planned.last().unwrap() > &reloaded_at,
        "a's runs do not span the reload at {reloaded_at}: {planned:?}"
    );

    // An invalid file: rejected, named to the line and key; nothing changes.
    let c_bad = http_check("c", "1x", &healthz, "");
    let text = daemon.rewrite(&format!("{a}{b_new}{c_bad}"));
    let line = text.lines().position(|l| l == "every = \"1x\"").unwrap() + 1;
    daemon.sighup();
    let stderr = daemon.wait_stderr("configuration rejected", timeout);
    let located = format!("{}:{line}:", daemon.config().display());
    let diagnostic = stderr
        .lines()
        .find(|l| l.contains(&located))
        .unwrap_or_else(|| panic!("no diagnostic at {located} in stderr:\n{stderr}"));
    assert!(
        diagnostic.contains("key `every`") && diagnostic.contains("1x"),
        "{diagnostic}"
    );
    assert!(daemon.running(), "the daemon exited on a bad reload");
    assert_eq!(daemon.check_names(), ["a", "b", "c"]);
    assert_eq!(
        sample(
            &daemon.metrics(),
            "vantage_config_last_reload_successful",
            &[]
        ),
        Some(0.0)
    );
    // The running configuration still runs, C included.
    let (a_runs, c_runs) = (runs_of(&daemon, "a"), runs_of(&daemon, "c"));
    wait_runs(&daemon, "a", a_runs + 1, timeout);
    wait_runs(&daemon, "c", c_runs + 1, timeout);

    // Fixed again: the next reload succeeds.
    daemon.rewrite(&format!("{a}{b_new}"));
    daemon.sighup();
    wait_until("c removed by the fixed file", timeout, || {
        let names = daemon.check_names();
        ((names == ["a", "b"]).then_some(()), format!("{names:?}"))
    });
    assert_eq!(
        sample(
            &daemon.metrics(),
            "vantage_config_last_reload_successful",
            &[]
        ),
        Some(1.0)
    );
    assert!(
        !daemon.metrics().contains("check=\"c\""),
        "c left metrics behind"
    );
    assert_on_grid(&daemon, "a");
}

/// 3b. Without SIGHUP: editing the file reloads it, whether it is written
///     in place or replaced by a rename (as editors do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_file_reloads_it() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let healthz = format!("{target}/healthz");
    let a = http_check("a", "1s", &healthz, "");
    let daemon = Daemon::start(dir.path(), "", &a, &[]);
    let timeout = Duration::from_secs(15);
    wait_runs(&daemon, "a", 1, timeout);

    // Written in place.
    let c = http_check("c", "1s", &healthz, "");
    daemon.rewrite(&format!("{a}{c}"));
    wait_until("c added by the edit", timeout, || {
        let names = daemon.check_names();
        ((names == ["a", "c"]).then_some(()), format!("{names:?}"))
    });
    wait_runs(&daemon, "c", 1, timeout);

    // Replaced by a rename.
    let d = http_check("d", "1s", &healthz, "");
    let text = Daemon::config_text(dir.path(), daemon.port, "", &format!("{a}{d}"));
    let tmp = dir.path().join(".vantage.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, daemon.config()).unwrap();
    wait_until("c replaced by d", timeout, || {
        let names = daemon.check_names();
        ((names == ["a", "d"]).then_some(()), format!("{names:?}"))
    });
    wait_runs(&daemon, "d", 1, timeout);
    assert!(
        daemon.stderr().contains("configuration file changed"),
        "{}",
        daemon.stderr()
    );
    assert_on_grid(&daemon, "a");
}

/// 3d. A reload that points a working check at a component that cannot be
///     loaded (not WebAssembly, missing, endless) is not accepted for that
///     check: the working component keeps running, the error names the
///     `component` key's file and line, and the reload metric says 0. A new
///     check with a broken component is added and fails with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_broken_component_keeps_the_working_one() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let healthz = format!("{target}/healthz");
    let a = http_check("a", "1s", &healthz, "");
    let mut daemon = Daemon::start(dir.path(), "", &a, &["--no-watch"]);
    let timeout = Duration::from_secs(15);
    wait_runs(&daemon, "a", 1, timeout);
    assert_eq!(check_of(&daemon, "a")["state"], "up");

    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"this is not WebAssembly\n").unwrap();
    let http = wasm("http").display().to_string();
    let cases = [
        (bogus.display().to_string(), "not a WebAssembly component"),
        (
            dir.path().join("missing.wasm").display().to_string(),
            "cannot read component",
        ),
        ("/dev/zero".to_string(), "larger than the limit of 64MiB"),
    ];
    for (i, (component, why)) in cases.iter().enumerate() {
        let text = daemon.rewrite(&a.replace(&http, component));
        let line = text
            .lines()
            .position(|l| l.starts_with("component = "))
            .unwrap()
            + 1;
        let runs = runs_of(&daemon, "a");
        daemon.sighup();
        let located = format!(
            "{}:{line}:13: check \"a\": key `component`: ",
            daemon.config().display()
        );
        let stderr = wait_until("the reload's report", timeout, || {
            let stderr = daemon.stderr();
            let reports = stderr.matches("reload incomplete").count();
            ((reports > i).then(|| stderr.clone()), stderr)
        });
        // The newest report (the log has each one too).
        let report = stderr
            .lines()
            .rfind(|l| l.starts_with(&located))
            .unwrap_or_else(|| panic!("no error at {located} in stderr:\n{stderr}"));
        assert!(report.contains(why), "{report}");
        assert_eq!(
            sample(
                &daemon.metrics(),
                "vantage_config_last_reload_successful",
                &[]
            ),
            Some(0.0),
            "{component}"
        );
        // The working component still runs, and passes.
        wait_runs(&daemon, "a", runs + 2, timeout);
        let now = check_of(&daemon, "a");
        assert_eq!(now["state"], "up", "{component}: {now}");
        assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
        assert!(daemon.running());
    }

    // A value the component's typed keys refuse (WIT 0.2.0) is refused the
    // same way: reported at its line and key, the running check kept.
    let reports = daemon.stderr().matches("reload incomplete").count();
    let text = daemon.rewrite(&http_check(
        "a",
        "1s",
        &healthz,
        "[check.config]\ntimeout = \"soon\"",
    ));
    let line = text
        .lines()
        .position(|l| l.starts_with("timeout = "))
        .unwrap()
        + 1;
    let runs = runs_of(&daemon, "a");
    daemon.sighup();
    let located = format!("{}:{line}:", daemon.config().display());
    let stderr = wait_until("the typed value's report", timeout, || {
        let stderr = daemon.stderr();
        let more = stderr.matches("reload incomplete").count() > reports;
        (more.then(|| stderr.clone()), stderr)
    });
    let report = stderr
        .lines()
        .rfind(|l| l.starts_with(&located) && l.contains("key `config.timeout`"))
        .unwrap_or_else(|| panic!("no error at {located} in stderr:\n{stderr}"));
    assert!(report.contains("not a valid duration"), "{report}");
    wait_runs(&daemon, "a", runs + 2, timeout);
    let now = check_of(&daemon, "a");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");

    // A new check with a broken component is added, and fails saying why.
    let b = http_check("b", "1s", &healthz, "").replace(&http, &bogus.display().to_string());
    daemon.rewrite(&format!("{a}{b}"));
    daemon.sighup();
    wait_until("b listed", timeout, || {
        let names = daemon.check_names();
        (
            names.contains(&"b".to_string()).then_some(()),
            format!("{names:?}"),
        )
    });
    wait_runs(&daemon, "b", 1, timeout);
    let b_now = check_of(&daemon, "b");
    assert!(
        b_now["last"]["result"]
            .to_string()
            .contains("not a WebAssembly component"),
        "{b_now}"
    );
    assert_eq!(check_of(&daemon, "a")["state"], "up");

    // Fixed: the reload succeeds.
    daemon.rewrite(&a);
    daemon.sighup();
    wait_until("a successful reload", timeout, || {
        let value = sample(
            &daemon.metrics(),
            "vantage_config_last_reload_successful",
            &[],
        );
        ((value == Some(1.0)).then_some(()), format!("{value:?}"))
    });
    assert_eq!(daemon.check_names(), ["a"]);
}

/// 3c. A failing check removed by a reload while a run is in flight: the
///     run finishes (into the history), but the check's alert stays resolved
///     and its metrics stay gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_removed_mid_run_leaves_no_alert_or_metrics() {
    let started = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/slow-error",
            get(
                |State((started, finished)): State<(Arc<AtomicU64>, Arc<AtomicU64>)>| async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::INTERNAL_SERVER_ERROR, "still broken")
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state((started.clone(), finished.clone()));
    let target = serve(app).await;
    let alertmanager = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let alerts = format!(
        "\n[alerts]\nalertmanager = [\"{}\"]\nresend = \"1s\"\n",
        alertmanager.url()
    );
    let keep = http_check("keep", "1s", &format!("{target}/healthz"), "");
    let doomed = http_check("doomed", "1s", &format!("{target}/slow-error"), "");
    let mut daemon = Daemon::start(
        dir.path(),
        "",
        &format!("{keep}{doomed}{alerts}"),
        &["--no-watch"],
    );
    let timeout = Duration::from_secs(15);
    wait_until("doomed's alert firing", timeout, || {
        let alert = alertmanager.alert("doomed");
        (alert.is_some().then_some(()), format!("{alert:?}"))
    });

    // Remove it while a run is in flight.
    let n = started.load(Ordering::SeqCst);
    wait_until("a new request to /slow-error", timeout, || {
        let now = started.load(Ordering::SeqCst);
        ((now > n).then_some(()), now.to_string())
    });
    let in_flight = started.load(Ordering::SeqCst);
    assert!(finished.load(Ordering::SeqCst) < in_flight);
    daemon.rewrite(&format!("{keep}{alerts}"));
    daemon.sighup();
    wait_until("doomed removed", timeout, || {
        let names = daemon.check_names();
        ((names == ["keep"]).then_some(()), format!("{names:?}"))
    });
    assert!(
        finished.load(Ordering::SeqCst) < in_flight,
        "the run finished before the reload: nothing was in flight"
    );
    // The run in flight finishes; give the alerts sink two resends.
    wait_until("the run in flight to finish", timeout, || {
        let done = finished.load(Ordering::SeqCst);
        ((done >= in_flight).then_some(()), done.to_string())
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        started.load(Ordering::SeqCst),
        in_flight,
        "doomed ran again"
    );
    assert!(
        alertmanager.alert("doomed").is_none(),
        "a removed check's alert is active: {:#?}",
        alertmanager.alerts()
    );
    let metrics = daemon.metrics();
    assert!(
        !metrics.contains("check=\"doomed\""),
        "a removed check's series came back:\n{metrics}"
    );
    // Its last run is in the history all the same (the API serves only
    // configured checks: read the file).
    let db = dir
        .path()
        .join("data")
        .join(vantage::sinks::history::FILE_NAME);
    let db = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let statuses: Vec<String> = db
        .prepare("SELECT status FROM runs WHERE check_name = 'doomed' ORDER BY started_unix_ms")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(statuses.len() as u64, in_flight, "{statuses:?}");
    assert!(statuses.iter().all(|s| s == "fail"), "{statuses:?}");
    assert!(daemon.running());
}

/// 3d. SIGHUP as soon as the daemon answers, while it may still be loading
///     its checks: a reload, not the end of the process.
#[test]
fn sighup_during_start_up_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        http_check("one", "1s", "http://127.0.0.1:9/", ""),
        http_check("two", "1s", "http://127.0.0.1:9/", ""),
    ]
    .concat();
    // Without the component cache, loading the checks takes a while.
    let mut daemon = Daemon::spawn(dir.path(), "", &body, &["--no-watch", "--no-cache"]);
    let url = format!("{}/healthz", daemon.url());
    wait_until("/healthz", Duration::from_secs(30), || {
        assert!(daemon.running(), "exited: {}", daemon.stderr());
        let answer = http_get(&url);
        (answer.as_ref().is_ok().then_some(()), format!("{answer:?}"))
    });
    daemon.sighup();
    wait_until("the reload", Duration::from_secs(20), || {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("SIGHUP at start-up ended the daemon ({status})");
        }
        let stderr = daemon.stderr();
        (stderr.contains("SIGHUP: reloading").then_some(()), stderr)
    });
    assert!(daemon.running());
    assert_eq!(daemon.check_names(), ["one", "two"]);
}

/// 4. SIGTERM with a run in flight: the run finishes, is stored, and the
///    process exits 0 within the grace period; the run is there after a
///    restart on the same data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_run_in_flight_and_keeps_it() {
    const SLOW_MS: u64 = 1500;
    let hits = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/slow",
            get(
                |State((hits, answered)): State<(Arc<AtomicU64>, Arc<AtomicU64>)>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    "finally"
                },
            ),
        )
        .with_state((hits.clone(), answered.clone()));
    let target = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let body = http_check("slow", "1s", &format!("{target}/slow"), "timeout = \"5s\"");
    let global = "shutdown_grace = \"10s\"";
    let mut daemon = Daemon::start(dir.path(), global, &body, &["--no-watch"]);

    // The first run is in flight: its request arrived, its answer has not.
    wait_until("a request to /slow", Duration::from_secs(10), || {
        let n = hits.load(Ordering::SeqCst);
        ((n >= 1).then_some(()), n.to_string())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        stored_runs(&daemon, "slow").is_empty(),
        "a run finished already"
    );
    let term_ms = now_ms();
    let term = Instant::now();
    daemon.sigterm();
    // Within the 10 s grace (plus the web server's and the sinks' stop).
    let status = daemon.wait(Duration::from_secs(10));
    let took = term.elapsed();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        daemon.stderr()
    );
    assert_eq!(
        answered.load(Ordering::SeqCst),
        1,
        "the daemon exited after {took:?}, before the run in flight got its answer"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a new run started after SIGTERM"
    );
    let stderr = daemon.stderr();
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    drop(daemon);

    // Restarted on the same data dir (and a new port), without running again.
    let body = http_check("slow", "1h", &format!("{target}/slow"), "");
    let daemon = Daemon::start(dir.path(), global, &body, &["--no-watch"]);
    let runs = stored_runs(&daemon, "slow");
    let in_flight = runs
        .iter()
        .find(|r| {
            let result = &r["result"];
            let started = result["started_unix_ms"].as_u64().unwrap();
            let ended = started + result["duration_ms"].as_f64().unwrap() as u64;
            started < term_ms && ended > term_ms
        })
        .unwrap_or_else(|| {
            panic!("the run in flight at SIGTERM ({term_ms}) is not in the history: {runs:#?}")
        });
    assert_eq!(in_flight["result"]["status"], "pass", "{in_flight:#}");
    assert!(
        in_flight["result"]["duration_ms"].as_f64().unwrap() >= (SLOW_MS - 50) as f64,
        "{in_flight:#}"
    );
    assert_eq!(runs.len(), 1, "{runs:#?}");
}

/// 5. A bad configuration at start-up: the daemon exits non-zero and names
///    the file, line and key of each problem.
#[test]
fn bad_config_at_start_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = http_check("bad", "1x", "http://127.0.0.1:9/", "");
    let mut daemon = Daemon::spawn(dir.path(), "", &body, &[]);
    let status = daemon.wait(Duration::from_secs(20));
    assert!(!status.success(), "exit status {status}");
    assert_eq!(status.code(), Some(3), "exit status {status}");
    let text = std::fs::read_to_string(daemon.config()).unwrap();
    let line = text.lines().position(|l| l == "every = \"1x\"").unwrap() + 1;
    let stderr = daemon.stderr();
    let located = format!("{}:{line}:", daemon.config().display());
    let diagnostic = stderr
        .lines()
        .find(|l| l.contains(&located))
        .unwrap_or_else(|| panic!("no diagnostic at {located} in stderr:\n{stderr}"));
    assert!(
        diagnostic.contains("check \"bad\"") && diagnostic.contains("key `every`"),
        "{diagnostic}"
    );
    // Nothing was served.
    assert!(http_get(&format!("{}/healthz", daemon.url())).is_err());
}
