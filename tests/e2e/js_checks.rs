//! Checks written in JavaScript and TypeScript: the SDK's examples
//! (`sdk/js/examples`) and a `vantage new --lang ts` project, built with the
//! toolchain `sdk/js/package.json` pins (componentize-js, TypeScript; `npm
//! ci` in `scripts/test-all.sh`) and run against the test application: the
//! verdicts, the timings, secrets redacted, a thrown error's message and
//! stack in the result.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    assertion_names, repo, run_component_json as run, start_target, vantage_async,
};

/// `sdk/js/node_modules/.bin`, where `npm ci` put the pinned toolchain.
fn toolchain() -> PathBuf {
    let bin = repo().join("sdk/js/node_modules/.bin");
    assert!(
        bin.join("componentize-js").exists() && bin.join("tsc").exists(),
        "{} has no componentize-js or tsc: run `bash scripts/test-all.sh` (it runs `npm ci \
         --prefix sdk/js`)",
        bin.display()
    );
    bin
}

/// `PATH` with the toolchain first.
fn path_with_toolchain() -> String {
    format!(
        "{}:{}",
        toolchain().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Build the SDK example `name`: its `app.js` beside a copy of the SDK
/// (componentize-js resolves imports inside the source's folder only).
fn example(name: &str, dir: &Path) -> PathBuf {
    let sdk = repo().join("sdk/js");
    let src = dir.join(name);
    std::fs::create_dir_all(src.join("vantage-check")).unwrap();
    std::fs::copy(
        sdk.join("examples").join(name).join("app.js"),
        src.join("app.js"),
    )
    .unwrap();
    std::fs::copy(
        sdk.join("vantage-check/index.js"),
        src.join("vantage-check/index.js"),
    )
    .unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let built = Command::new(toolchain().join("componentize-js"))
        .arg("--wit")
        .arg(repo().join("wit"))
        .args(["--world-name", "check", "-o"])
        .arg(&out)
        .arg("app.js")
        .current_dir(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "componentize-js failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_javascript_examples_build_and_prove_what_they_claim() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();

    let healthz = example("healthz", dir.path());
    let (code, r, stderr) = run(&healthz, &["--target", &format!("{target}/healthz")]).await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(
        assertion_names(&r),
        ["status is 2xx=pass", "latency below 2000 ms=pass"]
    );
    assert_eq!(r["timings"]["http"].as_array().unwrap().len(), 1, "{r:#}");
    let (code, r, _) = run(&healthz, &["--target", &format!("{target}/error")]).await;
    assert_eq!(code, 2, "{r:#}");
    assert!(
        assertion_names(&r).contains(&"status is 2xx=fail".to_string()),
        "{r:#}"
    );
    // No answer at all: the NetError fails the run with its reason.
    let (code, r, _) = run(&healthz, &["--target", "http://127.0.0.1:9/"]).await;
    assert_eq!(code, 2, "{r:#}");
    assert!(
        r["summary"].as_str().unwrap().starts_with("connect: "),
        "{r:#}"
    );

    let flow = example("login_flow", dir.path());
    let r = crate::python_checks::assert_login_flow(&flow, &target).await;
    assert_eq!(r["summary"], "uncaught JavaScript error", "{r:#}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the login answered without a token")
            && message.contains("Stack:")
            && message.contains("run@app.js:"),
        "{message}"
    );
}

/// The standard `fetch()` (over `wasi:http`) from an `async run`: the
/// exchange is policed, timed and traced like `http.get`, and the run
/// records to a cassette that replays offline (the JS test story).
#[tokio::test(flavor = "multi_thread")]
async fn an_async_check_using_fetch_is_traced_and_replays_offline() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let check = example("fetch_json", dir.path());
    let cassette = dir.path().join("fetch.json");
    let (code, r, stderr) = run(
        &check,
        &[
            "--target",
            &format!("{target}/healthz"),
            "--record",
            &cassette.display().to_string(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    let url = format!("{target}/healthz");
    assert_eq!(
        assertion_names(&r),
        [
            format!("{url}: status is 2xx=pass"),
            format!("{url}: json has status=pass")
        ],
        "{r:#}"
    );
    let traced = r["timings"]["http"].as_array().unwrap();
    assert_eq!(traced.len(), 1, "{r:#}");
    assert!(traced[0]["connect_ms"].as_f64().unwrap() > 0.0, "{r:#}");

    // A 5xx is an answer: the assertion fails, the run does not crash.
    let (code, r, _) = run(&check, &["--target", &format!("{target}/error")]).await;
    assert_eq!(code, 2, "{r:#}");
    assert!(
        assertion_names(&r).contains(&format!("{target}/error: status is 2xx=fail")),
        "{r:#}"
    );

    let report = crate::support::assert_replays(&check, &cassette).await;
    assert!(
        report.contains("1 of 1 interaction(s) replayed"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vantage_new_lang_ts_builds_a_typed_check_that_passes() {
    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("hello-ts");
    let out = vantage_async(vec![
        "new".into(),
        "--lang".into(),
        "ts".into(),
        project.display().to_string(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = std::fs::read_to_string(project.join("package.json")).unwrap();
    assert!(
        manifest.contains("\"typescript\": \"7.0.2\"")
            && manifest.contains("\"@bytecodealliance/componentize-js\": \"0.23.0\""),
        "{manifest}"
    );
    // Built as the README says, with the pinned toolchain in place of `npm
    // install`'s.
    let built = Command::new(project.join("build.sh"))
        .env("PATH", path_with_toolchain())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let (code, r, stderr) = run(
        &project.join("hello-ts.wasm"),
        &["--target", &format!("{target}/healthz")],
    )
    .await;
    assert_eq!(code, 0, "{r:#}\n{stderr}");
    assert_eq!(r["check"], "hello-ts", "{r:#}");
    assert_eq!(
        assertion_names(&r),
        ["status is 200=pass", "latency below 1000 ms=pass"]
    );

    // The types are checked: a wrong call does not build.
    let app = project.join("app.ts");
    let text = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, text.replace("statusIs(200)", "statusIs('200')")).unwrap();
    let built = Command::new(project.join("build.sh"))
        .env("PATH", path_with_toolchain())
        .output()
        .unwrap();
    assert!(!built.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(said.contains("app.ts"), "{said}");
}
