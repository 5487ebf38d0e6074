//! Real third-party servers for end-to-end tests: Prometheus Alertmanager
//! and Prometheus, from their Debian packages (`prometheus-alertmanager`,
//! `prometheus`; `scripts/test-all.sh` installs them). Each runs as a direct
//! child on a free 127.0.0.1 port with its state in a temp dir, and is killed
//! (by PID) on drop.
//!
//! The helpers block (process start, readiness polling, plain HTTP/1.0 over
//! std): call them from sync tests, from `spawn_blocking`, or from
//! `multi_thread` Tokio tests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Alertmanager binary of the Debian package.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";
/// The Prometheus binary of the Debian package.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

/// Fail loudly when a server binary is missing: the test must not pass
/// without it.
fn require(bin: &str, package: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing (Debian package `{package}`): run `bash scripts/test-all.sh`, \
         which installs it (or `apt-get install -y {package}`)"
    );
}

/// A free TCP port on 127.0.0.1 (free when returned; nothing holds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A plain `GET` (HTTP/1.0, connection closed by the server): the status
/// and the body.
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    let url = url::Url::parse(url).map_err(std::io::Error::other)?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = format!("{host}:{port}");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    write!(
        stream,
        "GET {target} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
    Ok((status, body.to_string()))
}

/// `GET` a JSON document; panics unless the status is 200.
pub fn get_json(url: &str) -> Value {
    let (status, body) = http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// A server process, killed by PID on drop; its output goes to a log file
/// that failures show.
struct Server {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
    port: u16,
}

impl Server {
    fn spawn(name: &'static str, bin: &str, args: &[String], log: PathBuf, port: u16) -> Server {
        let out = std::fs::File::create(&log).expect("creating the server log");
        let err = out.try_clone().unwrap();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let mut server = Server {
            name,
            child,
            log,
            port,
        };
        server.wait_ready();
        server
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll `/-/ready` (both servers have it) until 200.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        let url = format!("{}/-/ready", self.base());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited early ({status}); its log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if matches!(http_get(&url), Ok((200, _))) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} not ready on port {} after 30 s; its log:\n{}",
                self.name,
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `probe` every 100 ms until it returns `Some`, or panic after
/// `timeout` with `what` and the last value seen.
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> (Option<T>, String),
) -> T {
    let start = Instant::now();
    loop {
        let (found, last) = probe();
        if let Some(found) = found {
            return found;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real Prometheus Alertmanager with one `null` receiver and clustering
/// off.
pub struct Alertmanager {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Start one on a free port.
    pub fn start() -> Alertmanager {
        Self::start_on(free_port())
    }

    /// Start one on `port` (e.g. a port a client already targets).
    pub fn start_on(port: u16) -> Alertmanager {
        Self::start_with(
            port,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
    }

    /// Start one on `port` with the configuration `config` (YAML).
    pub fn start_with(port: u16, config_text: &str) -> Alertmanager {
        require(ALERTMANAGER_BIN, "prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_text).unwrap();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
            "--log.level=warn".to_string(),
        ];
        let server = Server::spawn(
            "alertmanager",
            ALERTMANAGER_BIN,
            &args,
            dir.path().join("alertmanager.log"),
            port,
        );
        Alertmanager { server, _dir: dir }
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.base()
    }

    /// `GET /api/v2/alerts`: the alerts it holds (resolved ones are not
    /// listed).
    pub fn alerts(&self) -> Vec<Value> {
        match get_json(&format!("{}/api/v2/alerts", self.url())) {
            Value::Array(alerts) => alerts,
            other => panic!("GET /api/v2/alerts: not an array: {other}"),
        }
    }

    /// The alert whose `check` label is `check`, if any.
    pub fn alert(&self, check: &str) -> Option<Value> {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["check"] == check)
    }
}

/// A real Prometheus scraping the given targets.
pub struct Prometheus {
    server: Server,
    _dir: tempfile::TempDir,
}

/// Start Prometheus on a free port, scraping itself (job `prometheus`) and
/// `scrape_targets` (job `vantage`: `host:port` each, path `/metrics`) every
/// `interval` (e.g. `"1s"`).
pub fn start_prometheus(scrape_targets: &[String], interval: &str) -> Prometheus {
    require(PROMETHEUS_BIN, "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let quoted = |targets: &[String]| {
        targets
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut config = format!(
        "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    );
    if !scrape_targets.is_empty() {
        config.push_str(&format!(
            "  - job_name: vantage\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            quoted(scrape_targets)
        ));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let args = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--log.level=warn".to_string(),
    ];
    let server = Server::spawn(
        "prometheus",
        PROMETHEUS_BIN,
        &args,
        dir.path().join("prometheus.log"),
        port,
    );
    Prometheus { server, _dir: dir }
}

/// A real Prometheus receiving remote write (`--web.enable-remote-write-
/// receiver`), scraping nothing, with an out-of-order window of 10 minutes
/// (`storage.tsdb.out_of_order_time_window`): stopped and started again on
/// the same port and data, as a receiver that goes away and comes back.
pub struct Receiver {
    prometheus: Option<Prometheus>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    /// Start one on a free port.
    pub fn start() -> Receiver {
        let mut receiver = Receiver {
            prometheus: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        };
        receiver.resume();
        receiver
    }

    /// Its remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// Stop it (kill by PID; its data stays).
    pub fn stop(&mut self) {
        self.prometheus = None;
    }

    /// Start it again with the same port and data.
    pub fn resume(&mut self) {
        require(PROMETHEUS_BIN, "prometheus");
        let config = self.dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 10m\n",
        )
        .unwrap();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("tsdb").display()
            ),
            format!("--web.listen-address=127.0.0.1:{}", self.port),
            "--web.enable-remote-write-receiver".to_string(),
            "--log.level=warn".to_string(),
        ];
        let log = (0..)
            .map(|i| self.dir.path().join(format!("prometheus-{i}.log")))
            .find(|p| !p.exists())
            .unwrap();
        let server = Server::spawn("prometheus", PROMETHEUS_BIN, &args, log, self.port);
        self.prometheus = Some(Prometheus {
            server,
            _dir: tempfile::tempdir().unwrap(),
        });
    }

    /// The running Prometheus (panics when stopped).
    pub fn prometheus(&self) -> &Prometheus {
        self.prometheus.as_ref().expect("the receiver is stopped")
    }
}

impl Prometheus {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.base()
    }

    /// An instant query (`/api/v1/query`): the `data.result` array, e.g.
    /// `[{"metric": {...}, "value": [1700000000.123, "1"]}]`. Panics on an
    /// error response.
    pub fn query(&self, promql: &str) -> Value {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", self.url())).unwrap();
        url.query_pairs_mut().append_pair("query", promql);
        let response = get_json(url.as_str());
        assert_eq!(response["status"], "success", "query {promql}: {response}");
        response["data"]["result"].clone()
    }

    /// Wait until `query(promql)` satisfies `pred`; return that result.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(&format!("query {promql:?}"), timeout, || {
            let result = self.query(promql);
            let last = result.to_string();
            (pred(&result).then_some(result), last)
        })
    }

    /// The value of a single-sample result (`result[0].value[1]`), if any.
    pub fn scalar(result: &Value) -> Option<f64> {
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

#[test]
fn prometheus_scrapes_itself() {
    let prometheus = start_prometheus(&[], "1s");
    let result = prometheus.wait_for("up{job=\"prometheus\"}", Duration::from_secs(20), |r| {
        Prometheus::scalar(r) == Some(1.0)
    });
    assert_eq!(result[0]["metric"]["job"], "prometheus");
}

#[test]
fn alertmanager_starts_and_lists_no_alerts() {
    let alertmanager = Alertmanager::start();
    assert!(alertmanager.alerts().is_empty());
}
