//! Sharing checks through a real OCI registry: Debian's `docker-registry`
//! (CNCF distribution 2.8) on 127.0.0.1. `vantage push`, `pull`, `inspect`
//! and `run` on `oci://` references, a daemon whose check comes from the
//! registry (and starts from its cache when the registry is down), the
//! older Wasm layout, and artifacts refused with the reason.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::daemon::{Daemon, check_of};
use crate::servers::{free_port, http_get, wait_until};
use crate::support::{start_target, vantage_async, wasm};

/// The registry binary of the Debian package.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry serve` process on a free loopback port, killed on
/// drop.
pub(crate) struct LocalRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    pub(crate) fn start() -> LocalRegistry {
        Self::start_with("", &[])
    }

    /// Start one whose configuration has `extra` YAML appended, with
    /// `files` (name, text) written beside it first; `{dir}` in `extra`
    /// stands for that directory.
    pub(crate) fn start_with(extra: &str, files: &[(&str, &str)]) -> LocalRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing (Debian package `docker-registry`): run `bash \
             scripts/test-all.sh`, which installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n{}",
                dir.path().join("data").display(),
                extra.replace("{dir}", &dir.path().display().to_string()),
            ),
        )
        .unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let registry = LocalRegistry {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while !matches!(
            http_get(&format!("{}/v2/", registry.url())),
            Ok((200 | 400 | 401, _))
        ) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Upload `bytes` as a blob of `repo`; its digest.
    pub(crate) async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let client = reqwest::Client::new();
        let started = client
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "{:?}", started.text().await);
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.url())
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = client
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
        digest
    }

    /// Put `manifest` under `repo:tag`.
    pub(crate) async fn manifest(&self, repo: &str, tag: &str, manifest: &Value) {
        let put = reqwest::Client::new()
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.url()))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(manifest).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
    }

    /// The manifest of `repo:reference` and its config blob.
    pub(crate) async fn read(&self, repo: &str, reference: &str) -> (Value, Value) {
        let client = reqwest::Client::new();
        let manifest: Value = client
            .get(format!("{}/v2/{repo}/manifests/{reference}", self.url()))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let digest = manifest["config"]["digest"].as_str().unwrap();
        let config: Value = client
            .get(format!("{}/v2/{repo}/blobs/{digest}", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (manifest, config)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vantage push FILE REF`; the pinned reference it printed.
pub(crate) async fn push(file: &Path, reference: &str) -> String {
    let out = vantage_async(vec![
        "push".into(),
        file.display().to_string(),
        reference.into(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out.stdout
        .trim()
        .strip_prefix("pushed ")
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string()
}

/// `vantage run COMPONENT` against a healthy endpoint passes.
pub(crate) async fn assert_runs_and_passes(component: &str, extra: &[&str]) {
    let target = start_target().await;
    let healthz = format!("{target}/healthz");
    let mut args = owned(&["run", component, "--target", &healthz, "--json"]);
    args.extend(owned(extra));
    let out = vantage_async(args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["status"], "pass");
}

/// Wait until `check` has a last result on the daemon's board.
pub(crate) fn wait_result(daemon: &Daemon, check: &str, timeout: Duration) {
    wait_until(&format!("a result of {check}"), timeout, || {
        let now = check_of(daemon, check);
        let done = !now["last"]["result"]["status"].is_null();
        (done.then_some(()), now.to_string())
    });
}

pub(crate) fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn push_pull_inspect_and_run_through_a_real_registry() {
    let registry = LocalRegistry::start();
    let http = wasm("http");
    let reference = format!("{}/vantage/http:1.2.0", registry.host());
    let pinned = push(&http, &reference).await;
    let bytes = std::fs::read(&http).unwrap();
    assert!(
        pinned.starts_with(&format!("oci://{reference}@sha256:")),
        "{pinned}"
    );

    // The CNCF Wasm artifact, with the check's metadata as annotations.
    let (manifest, config) = registry.read("vantage/http", "1.2.0").await;
    let digest = pinned.rsplit('@').next().unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/wasm", "{manifest:#}");
    assert_eq!(
        layer["digest"],
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let notes = &manifest["annotations"];
    assert_eq!(notes["dev.vantage.check.name"], "http", "{notes:#}");
    assert_eq!(
        notes["dev.vantage.check.world"],
        "vantage:check/check@0.2.0"
    );
    assert_eq!(notes["org.opencontainers.image.title"], "http.wasm");
    assert!(
        notes["dev.vantage.check.config"]
            .as_str()
            .unwrap()
            .contains("expect.status")
    );
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("wasm"), Some("wasip2"))
    );
    assert_eq!(config["layerDigests"][0], layer["digest"]);
    assert!(
        config["component"]["imports"]
            .to_string()
            .contains("vantage:check/http@0.2.0"),
        "{config:#}"
    );
    // The world exports its functions (`describe`, `run`) directly.
    assert!(
        config["component"]["exports"]
            .to_string()
            .contains("\"run\""),
        "{config:#}"
    );

    // Pulled by tag: the same bytes, and the digest pushed.
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("pulled.wasm");
    let out = vantage_async(owned(&[
        "pull",
        &format!("oci://{reference}"),
        "-o",
        out_file.to_str().unwrap(),
        "--no-cache",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(digest), "{}", out.stdout);
    assert_eq!(std::fs::read(&out_file).unwrap(), bytes);
    // Not a terminal: one plain progress line, no bar's control characters.
    assert!(
        out.stderr.contains("pulling the component layer (") && !out.stderr.contains('\u{1b}'),
        "{:?}",
        out.stderr
    );

    // Inspected and run straight from the registry, pinned to the digest.
    let out = vantage_async(owned(&["inspect", "--json", &pinned])).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["metadata"]["name"], "http");
    assert_eq!(doc["component"], pinned);
    assert_runs_and_passes(&format!("oci://{reference}"), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_older_wasm_layout_pulls_and_runs() {
    // Kubewarden and wasm-to-oci push one
    // `application/vnd.wasm.content.layer.v1+wasm` layer and an empty
    // config, with a top-level artifactType.
    let registry = LocalRegistry::start();
    let bytes = std::fs::read(wasm("healthz")).unwrap();
    let layer = registry.blob("old/healthz", &bytes).await;
    let config = registry.blob("old/healthz", b"{}").await;
    registry
        .manifest(
            "old/healthz",
            "0.1",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.wasm.content.layer.v1+wasm",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
                "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": layer, "size": bytes.len()}],
            }),
        )
        .await;
    let component = format!("oci://{}/old/healthz:0.1", registry.host());
    assert_runs_and_passes(&component, &["--no-cache"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_that_are_not_one_wasm_component_are_refused_with_the_reason() {
    let registry = LocalRegistry::start();
    let bytes = std::fs::read(wasm("healthz")).unwrap();
    let layer = registry.blob("bad/check", &bytes).await;
    let config = registry.blob("bad/check", b"{}").await;
    let descriptor =
        |media: &str| json!({"mediaType": media, "digest": layer, "size": bytes.len()});
    let manifest = |layers: Vec<Value>| {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config, "size": 2},
            "layers": layers,
        })
    };
    let tar = "application/vnd.oci.image.layer.v1.tar+gzip";
    registry
        .manifest("bad/check", "tar", &manifest(vec![descriptor(tar)]))
        .await;
    let wasm_layer = descriptor("application/wasm");
    registry
        .manifest(
            "bad/check",
            "two",
            &manifest(vec![wasm_layer.clone(), wasm_layer]),
        )
        .await;
    let host = registry.host();
    let pull = |reference: String, extra: &[&str]| {
        let mut args = owned(&["pull", &reference, "-o", "/dev/null", "--no-cache"]);
        args.extend(owned(extra));
        vantage_async(args)
    };
    for (reference, extra, why) in [
        (
            format!("oci://{host}/bad/check:tar"),
            &[][..],
            "layer media type application/vnd.oci.image.layer.v1.tar+gzip is not a Wasm component",
        ),
        (
            format!("oci://{host}/bad/check:two"),
            &[],
            "the manifest has 2 layers",
        ),
        (
            format!("oci://{host}/bad/check:missing"),
            &[],
            "is not in the registry",
        ),
    ] {
        let out = pull(reference.clone(), extra).await;
        assert_ne!(out.code, 0, "{reference}: {}", out.stdout);
        assert!(out.stderr.contains(why), "{reference}: {}", out.stderr);
    }
    // A layer larger than the cap is refused from the manifest's claim,
    // before any of it is fetched.
    let pinned = push(&wasm("http"), &format!("{host}/big/http:1")).await;
    let out = pull(pinned, &["--max-component-size", "64KiB"]).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("larger than the limit of 65536 bytes"),
        "{}",
        out.stderr
    );
    // A registry that is not there: the reason, not a hang.
    let nowhere = format!("oci://127.0.0.1:{}/x/y:1", free_port());
    let out = pull(nowhere, &[]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("cannot reach it"), "{}", out.stderr);
}

/// A daemon whose check is `component = "oci://…"`, through a lock file:
/// it runs the digest the lock pins even after the tag moves, until
/// `vantage lock --update` moves it; a tag the lock does not pin is refused
/// as stale; restarted while the registry is down it starts from its cache,
/// and a component never pulled fails with the reason while the other
/// check keeps passing.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_runs_locked_checks_from_the_registry_and_from_its_cache_when_it_is_down() {
    let registry = LocalRegistry::start();
    let reference = format!("oci://{}/vantage/http:1.2.0", registry.host());
    let first = push(&wasm("http"), &reference).await;
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vantage.toml");
    let lock_file = dir.path().join("vantage.lock");
    let check = |name: &str, component: &str| {
        format!(
            "\n[[check]]\nname = \"{name}\"\ncomponent = \"{component}\"\nevery = \"1s\"\n\
             targets = [\"{target}/healthz\"]\nallow = [\"{{target}}\"]\n"
        )
    };
    let body = check("shared", &reference);
    let timeout = Duration::from_secs(20);
    let run_daemon = |body: &str| {
        let daemon = Daemon::start(dir.path(), "", body, &["--no-watch"]);
        wait_result(&daemon, "shared", timeout);
        daemon
    };
    let stop = |mut daemon: Daemon| {
        daemon.sigterm();
        daemon.wait(timeout);
    };

    // Unlocked, the tag resolves to what was pushed; the board shows it pinned.
    let daemon = run_daemon(&body);
    let now = check_of(&daemon, "shared");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
    assert_eq!(now["component"], first, "{now}");
    // What ran is recorded by digest: in the run's record and the metrics.
    assert_eq!(now["last"]["component"]["source"], first, "{now}");
    let sha = now["last"]["component"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(sha.len(), 64, "{now}");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains(&format!(
            "vantage_check_component_info{{check=\"shared\",location=\"e2e-dc1\",component=\"{first}\",sha256=\"{sha}\"}} 1"
        )),
        "{metrics}"
    );
    stop(daemon);

    // Locked, then the tag moves: the daemon keeps the locked digest.
    let lock = |extra: &[&str]| {
        let mut args = owned(&["lock", config.to_str().unwrap()]);
        args.extend(owned(extra));
        vantage_async(args)
    };
    let out = lock(&[]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let digest = |pinned: &str| pinned.rsplit('@').next().unwrap().to_string();
    assert!(
        std::fs::read_to_string(&lock_file)
            .unwrap()
            .contains(&digest(&first)),
        "{}",
        out.stdout
    );
    let second = push(&wasm("healthz"), &reference).await;
    assert_ne!(digest(&first), digest(&second));
    let daemon = run_daemon(&body);
    assert_eq!(check_of(&daemon, "shared")["component"], first);
    stop(daemon);

    // `--update` moves it; a tag the lock does not pin is stale.
    let out = lock(&["--update", "shared"]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("{} -> {}", digest(&first), digest(&second))),
        "{}",
        out.stdout
    );
    let other = reference.replace(":1.2.0", ":other");
    let body = format!("{body}{}", check("stale", &other));
    let daemon = run_daemon(&body);
    assert_eq!(check_of(&daemon, "shared")["component"], second);
    wait_result(&daemon, "stale", timeout);
    let why = check_of(&daemon, "stale")["last"]["result"].to_string();
    assert!(why.contains("the lock is stale"), "{why}");
    stop(daemon);

    // The registry goes away. Locked: the pinned digest comes from the
    // cache; a component never pulled fails with the reason.
    drop(registry);
    let never = format!(
        "{}@sha256:{}",
        reference.replace(":1.2.0", ""),
        "0".repeat(64)
    );
    let body = format!(
        "{}{}",
        check("shared", &reference),
        check("unpulled", &never)
    );
    let daemon = run_daemon(&body);
    wait_result(&daemon, "unpulled", timeout);
    let now = check_of(&daemon, "shared");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
    let why = check_of(&daemon, "unpulled")["last"]["result"].to_string();
    assert!(
        why.contains("cannot pull") && why.contains("cannot reach it"),
        "{why}"
    );
    stop(daemon);

    // Unlocked: the tag's last digest, from the cache, with a warning.
    std::fs::remove_file(&lock_file).unwrap();
    let daemon = run_daemon(&check("shared", &reference));
    let now = check_of(&daemon, "shared");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
    assert_eq!(now["component"], second);
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("registry unreachable: using the cached digest"),
        "{stderr}"
    );
}

/// A registry with htpasswd authentication: without credentials a push is
/// refused saying which registry and where credentials were looked for;
/// with them in `REGISTRY_AUTH_FILE` (podman's), or from a Docker
/// credential helper, push and pull work.
#[test]
fn credentials_come_from_the_auth_file_and_a_401_says_where_they_were_looked_for() {
    // bcrypt of `s3cret` (Debian's python3: crypt.METHOD_BLOWFISH).
    let htpasswd = "alice:$2b$04$uma7dkg.lJKvaOTGpP4EMOcVl5jBzZWXrRD7tzFGCS42t/VHkcTxu\n";
    let registry = LocalRegistry::start_with(
        "auth:\n  htpasswd:\n    realm: vantage-test\n    path: {dir}/htpasswd\n",
        &[("htpasswd", htpasswd)],
    );
    let home = tempfile::tempdir().unwrap();
    let auth_file = home.path().join("auth.json");
    let reference = format!("{}/private/http:1", registry.host());
    let http = wasm("http");
    let run = |args: &[&str], auth: Option<&Path>| {
        let mut command = Command::new(crate::support::vantage_bin());
        command
            .args(args)
            .env("DOCKER_CONFIG", home.path().join("no-docker"))
            .env("HOME", home.path())
            .env("VANTAGE_CACHE_DIR", home.path().join("cache"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("RUST_LOG");
        if let Some(file) = auth {
            command.env("REGISTRY_AUTH_FILE", file);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = run(&["push", http.to_str().unwrap(), &reference], None);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "registry {} refused access to private/http",
            registry.host()
        )) && stderr.contains("REGISTRY_AUTH_FILE")
            && stderr.contains("none for"),
        "{stderr}"
    );

    std::fs::write(
        &auth_file,
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"YWxpY2U6czNjcmV0\"}}}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(
        &["push", http.to_str().unwrap(), &reference],
        Some(&auth_file),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let out_file = home.path().join("pulled.wasm");
    let (code, stdout, stderr) = run(
        &[
            "pull",
            &reference,
            "-o",
            out_file.to_str().unwrap(),
            "--no-cache",
        ],
        Some(&auth_file),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read(&out_file).unwrap(),
        std::fs::read(&http).unwrap()
    );
    // The secret is never printed.
    assert!(!format!("{stdout}{stderr}").contains("s3cret"));

    // A credential helper named by `credHelpers` in $DOCKER_CONFIG/config.json
    // (`docker-credential-NAME get`, the server on stdin, JSON out).
    let docker = home.path().join("docker");
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            "{{\"credHelpers\": {{\"{}\": \"vtest\"}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let helper = bin.join("docker-credential-vtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n\
         printf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$server\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(crate::support::vantage_bin())
        .args([
            "pull",
            &reference,
            "-o",
            out_file.to_str().unwrap(),
            "--no-cache",
        ])
        .env("DOCKER_CONFIG", &docker)
        .env("HOME", home.path())
        .env("PATH", path)
        .env("VANTAGE_CACHE_DIR", home.path().join("cache"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// A registry that lies, written here (no real registry serves bytes that
/// do not match their digest): the manifest asked for by digest is another
/// one, or the layer is not what the manifest names. Both are refused with
/// the digests, and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_serving_bytes_that_do_not_match_their_digest_is_refused() {
    use axum::extract::Path as UrlPath;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;

    let wasm_bytes = std::fs::read(wasm("healthz")).unwrap();
    let sha = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
    let layer_digest = sha(&wasm_bytes);
    let config = b"{}".to_vec();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": sha(&config), "size": 2},
        "layers": [{"mediaType": "application/wasm", "digest": layer_digest, "size": wasm_bytes.len()}],
    }))
    .unwrap();
    let good_manifest = sha(&manifest);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let app = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/lie/{name}/manifests/{reference}",
            get(move |UrlPath((_, reference)): UrlPath<(String, String)>| {
                let manifest = manifest.clone();
                async move {
                    let digest = sha(&manifest);
                    // Whatever is asked for (`reference`), the same manifest,
                    // named by its own digest in the header.
                    let _ = reference;
                    (
                        [
                            (header::CONTENT_TYPE, media.to_string()),
                            (
                                header::HeaderName::from_static("docker-content-digest"),
                                digest,
                            ),
                        ],
                        manifest,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/v2/lie/{name}/blobs/{digest}",
            // The layer's bytes, tampered with.
            get(move || {
                let mut bytes = wasm_bytes.clone();
                bytes[100] ^= 0xff;
                async move { bytes }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.wasm");
    let pull = |reference: String| {
        vantage_async(owned(&[
            "pull",
            &reference,
            "-o",
            file.to_str().unwrap(),
            "--no-cache",
        ]))
    };

    // Asked for another digest, it sends this manifest.
    let other = format!("sha256:{}", "0".repeat(64));
    let out = pull(format!("oci://{host}/lie/m@{other}")).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "the manifest does not match its digest: expected {other}"
        )),
        "{}",
        out.stderr
    );
    // The right manifest, a tampered layer.
    let out = pull(format!("oci://{host}/lie/m@{good_manifest}")).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "the component layer does not match its digest: expected {layer_digest}"
        )),
        "{}",
        out.stderr
    );
    assert!(!file.exists(), "nothing is written for a refused component");
}
