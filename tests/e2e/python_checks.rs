//! Checks written in Python: the SDK's examples (`sdk/python/examples`) and
//! a `vantage new --lang python` project, built with componentize-py (as a
//! Python developer builds them) and run against the test application: the
//! verdicts, the timings, secrets redacted, an uncaught exception's
//! traceback in the result; Python's own HTTP clients (urllib, and a
//! vendored `requests`) through `wasi:http`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{
    FLOW_PASSWORD, assertion_names, repo, run_component_json as run, secret_file, start_target,
    vantage_async,
};

/// Build `app.py` in `dir` (with the SDK and WIT at `sdk`/`wit`, and the
/// packages vendored in `vendor`) into `out`.
fn componentize(dir: &Path, sdk: &Path, wit: &Path, vendor: &[&Path], out: &Path) {
    let mut command = Command::new("componentize-py");
    command
        .arg("-d")
        .arg(wit)
        .args(["-w", "check", "componentize", "-p"])
        .arg(sdk)
        .args(["-p", "."]);
    for path in vendor {
        command.arg("-p").arg(path);
    }
    let result = command
        .arg("app")
        .arg("-o")
        .arg(out)
        .current_dir(dir)
        .output();
    let output = result.unwrap_or_else(|e| {
        panic!(
            "componentize-py cannot run ({e}): run `bash scripts/test-all.sh`, which installs it \
             (pip install componentize-py==0.25.1)"
        )
    });
    assert!(
        output.status.success(),
        "componentize-py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Build the SDK example `name` into `dir`; the component's path.
fn example(name: &str, dir: &Path) -> PathBuf {
    let sdk = repo().join("sdk/python");
    let out = dir.join(format!("{name}.wasm"));
    componentize(
        &sdk.join("examples").join(name),
        &sdk,
        &repo().join("wit"),
        &[],
        &out,
    );
    out
}

/// `requests==2.32.3` and its dependencies (urllib3, idna, certifi and
/// charset_normalizer, pure-Python wheels for the check's CPython 3.14),
/// installed with pip once per target dir, as a check's author vendors them.
fn vendored_requests() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-vendor/requests-2.32.3");
    let done = dir.join(".installed");
    if done.exists() {
        return dir;
    }
    let staging = PathBuf::from(format!("{}.partial-{}", dir.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-compile", "--only-binary=:all:", "--platform", "any"])
        .args([
            "--python-version",
            "3.14",
            "--implementation",
            "py",
            "--target",
        ])
        .arg(&staging)
        .arg("requests==2.32.3")
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 -m pip cannot run ({e}): the test vendors requests with pip")
        });
    assert!(
        output.status.success(),
        "pip install requests==2.32.3 failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).unwrap();
    std::fs::write(&done, "requests==2.32.3\n").unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_examples_build_and_prove_what_they_claim() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();

    // healthz: pass on the healthy endpoint, with per-phase timings; fail
    // on a 500; a mistyped key is refused naming it.
    let healthz = example("healthz", dir.path());
    let (code, r, stderr) = run(&healthz, &["--target", &format!("{target}/healthz")]).await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(
        assertion_names(&r),
        ["status is 2xx=pass", "latency below 2000 ms=pass"]
    );
    assert_eq!(r["timings"]["http"].as_array().unwrap().len(), 1, "{r:#}");
    assert!(
        r["measurements"].to_string().contains("http_processing_ms"),
        "{r:#}"
    );
    let (code, r, _) = run(
        &healthz,
        &[
            "--target",
            &format!("{target}/error"),
            "--set",
            "expect.body_contains=ok",
        ],
    )
    .await;
    assert_eq!(code, 2, "{r:#}");
    assert!(
        assertion_names(&r).contains(&"status is 2xx=fail".to_string()),
        "{r:#}"
    );
    let out = vantage_async(vec![
        "run".into(),
        healthz.display().to_string(),
        "--target".into(),
        format!("{target}/healthz"),
        "--set".into(),
        "expct.status=200".into(),
    ])
    .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("expct.status: unknown key"),
        "{}",
        out.stderr
    );

    // login_flow: a secret password, a token and a cookie carried to the
    // API; the password never printed.
    let flow = example("login_flow", dir.path());
    let r = assert_login_flow(&flow, &target).await;
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Traceback (most recent call last)")
            && message.contains("KeyError: 'token'")
            && message.contains("app.py"),
        "{message}"
    );
}

/// The login-flow example (every SDK has one, the same check): logged in
/// with the secret password, the API called with the token and cookie, the
/// password never printed; a wrong password fails saying so; a login whose
/// contract changed (no `token`) is a bug in the check, ending the run with
/// status `error`: that result, for the language's own words.
pub(crate) async fn assert_login_flow(flow: &Path, target: &str) -> Value {
    let (_secret_dir, grant) = secret_file("password", FLOW_PASSWORD);
    let base = ["--target", target, "--set", "username=monitor"];
    let mut args = base.to_vec();
    args.extend(["--secret", &grant]);
    let (code, r, stderr) = run(flow, &args).await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(
        assertion_names(&r),
        [
            "status is 200=pass",
            "status is 200=pass",
            "json /user/name is \"monitor\"=pass"
        ]
    );
    assert_eq!(r["timings"]["http"].as_array().unwrap().len(), 2, "{r:#}");
    assert!(!format!("{r}{stderr}").contains(FLOW_PASSWORD));

    let (_bad_dir, bad) = secret_file("password", "not-the-password");
    let mut args = base.to_vec();
    args.extend(["--secret", &bad]);
    let (code, r, _) = run(flow, &args).await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["summary"], "login refused: 401", "{r:#}");

    let mut args = base.to_vec();
    args.extend(["--secret", &grant, "--set", "login_path=/login-v2"]);
    let (code, r, _) = run(flow, &args).await;
    assert_eq!(code, 3, "{r:#}");
    assert!(!r.to_string().contains(FLOW_PASSWORD));
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn vantage_new_lang_python_builds_a_check_that_passes() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("hello-py");
    let out = vantage_async(vec![
        "new".into(),
        "--lang".into(),
        "python".into(),
        project.display().to_string(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("build.sh"), "{}", out.stdout);
    // The project builds with its own build script, SDK and WIT copies.
    let built = Command::new(project.join("build.sh")).output().unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (code, r, stderr) = run(
        &project.join("hello-py.wasm"),
        &["--target", &format!("{target}/healthz")],
    )
    .await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["check"], "hello-py", "{r:#}");
    assert_eq!(
        assertion_names(&r),
        ["status is 200=pass", "latency below 1000 ms=pass"]
    );
    // The SDK copied into the project is the SDK.
    assert_eq!(
        std::fs::read_to_string(project.join("vantage_check/__init__.py")).unwrap(),
        std::fs::read_to_string(repo().join("sdk/python/vantage_check/__init__.py")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_urllib_and_vendored_requests_go_through_wasi_http() {
    let target = start_target().await;
    // A second server the check may not reach (not one of its targets).
    let elsewhere = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let sdk = repo().join("sdk/python");
    let vendor = vendored_requests();
    let check = dir.path().join("stdlib_http.wasm");
    componentize(
        &sdk.join("examples/stdlib_http"),
        &sdk,
        &repo().join("wit"),
        &[&vendor],
        &check,
    );

    // urllib.request and requests, after `import vantage_check` alone: 2xx
    // and the JSON field, directly and through a redirect each client
    // follows itself. The vendored requests is the one imported.
    let cassette = dir.path().join("stdlib_http.json");
    let (code, r, stderr) = run(
        &check,
        &[
            "--target",
            &format!("{target}/healthz"),
            "--target",
            &format!("{target}/redirect"),
            "--record",
            &cassette.display().to_string(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["status"], "pass", "{r:#}");
    let per_target = [
        "urllib: status is 2xx=pass",
        "urllib: json /status is \"ok\"=pass",
        "requests: status is 2xx=pass",
        "requests: json /status is \"ok\"=pass",
    ];
    assert_eq!(
        assertion_names(&r),
        [per_target, per_target].concat(),
        "{r:#}"
    );
    assert!(
        r["logs"].to_string().contains("requests 2.32.3 vendored"),
        "{r:#}"
    );
    let timed = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "http_total_ms" && m["value"].as_f64().unwrap() > 0.0)
        .count();
    assert_eq!(timed, 4, "{r:#}");
    // Every exchange, redirects included, is in the run's HTTP trace with
    // its phases, as `http.fetch`'s are.
    let traced = r["timings"]["http"].as_array().unwrap();
    assert_eq!(traced.len(), 6, "{r:#}");
    assert!(
        traced
            .iter()
            .all(|t| t["total_ms"].as_f64().unwrap() > 0.0 && t["status"].is_u64()),
        "{r:#}"
    );
    // The unit-test story: the recorded run replays offline to its verdict.
    let report = crate::support::assert_replays(&check, &cassette).await;
    assert!(
        report.contains("6 of 6 interaction(s) replayed"),
        "{report}"
    );

    // A 5xx is an answer: the assertions fail, nothing crashes.
    let (code, r, _) = run(&check, &["--target", &format!("{target}/error")]).await;
    assert_eq!(code, 2, "{r:#}");
    let names = assertion_names(&r);
    assert!(
        names.contains(&"urllib: status is 2xx=fail".to_string())
            && names.contains(&"requests: status is 2xx=fail".to_string()),
        "{r:#}"
    );

    // A redirect to a host outside the allow list: both clients get an
    // OSError naming the wasi:http refusal, and the check fails with it.
    let port = elsewhere.rsplit(':').next().unwrap();
    let (code, r, stderr) = run(
        &check,
        &["--target", &format!("{target}/redirect-to-port/{port}")],
    )
    .await;
    assert_eq!(code, 2, "{r:#}\n{stderr}");
    assert_eq!(r["status"], "fail", "{r:#}");
    assert!(r["error"].is_null(), "{r:#}");
    let refused = format!(
        "GET {elsewhere}/healthz: refused by the host: not in this check's outbound allow \
         list (wasi:http error-code HTTP-request-denied)"
    );
    assert_eq!(
        assertion_names(&r),
        [
            format!("urllib: {refused}=fail"),
            format!("requests: {refused}=fail")
        ],
        "{r:#}"
    );
    assert!(r["summary"].as_str().unwrap().contains(&refused), "{r:#}");
}
