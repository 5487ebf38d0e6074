//! The other subcommands, as a new user runs them: `inspect`, `new` (scaffold,
//! build, run), `validate`, `demo`, and errors on bad input.

use std::process::Command;

use crate::support::{
    guest_target_dir, repo, run_json, start_target, vantage, vantage_async, wasm,
};

#[test]
fn inspect_shows_metadata_world_and_capabilities() {
    let out = vantage(&["inspect", "--json", wasm("http").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["world"], "vantage:check/check@0.1.0");
    assert_eq!(doc["metadata"]["name"], "http");
    assert_eq!(doc["metadata"]["outbound"][0], "{target}");
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
    let keys: Vec<&str> = doc["metadata"]["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"expect.status"), "{keys:?}");
    assert!(
        doc["imports"]
            .to_string()
            .contains("vantage:check/http@0.1.0")
    );

    let human = vantage(&["inspect", wasm("healthz").to_str().unwrap()]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("healthz "), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("world:     vantage:check/check@0.1.0")
    );
}

#[test]
fn a_file_that_is_not_a_component_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"definitely not wasm").unwrap();
    let out = vantage(&["run", bogus.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("not a WebAssembly component"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("bogus.wasm"), "{}", out.stderr);

    let out = vantage(&["run", dir.path().join("missing.wasm").to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("cannot read component"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_flags_are_rejected_with_the_right_form() {
    let http = wasm("http");
    let out = vantage(&["run", http.to_str().unwrap(), "--memory", "lots"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--memory"), "{}", out.stderr);
    let out = vantage(&["run", http.to_str().unwrap(), "--set", "novalue"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--set"), "{}", out.stderr);
    let out = vantage(&[
        "run",
        http.to_str().unwrap(),
        "--allow",
        "https://api.*.com",
    ]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("api.*.com"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_scaffolds_a_check_that_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("my-check");
    let out = vantage(&["new", crate_dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("cargo build --release"),
        "{}",
        out.stdout
    );

    // Build it exactly as the README says (sharing the guest target dir to
    // reuse compiled dependencies).
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success());
    let component = guest_target_dir().join("wasm32-wasip2/release/my_check.wasm");
    assert!(component.exists());

    let base = start_target().await;
    let out = vantage_async(vec![
        "run".into(),
        component.display().to_string(),
        "--json".into(),
        "--target".into(),
        format!("{base}/healthz"),
    ])
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = out.json();
    assert_eq!(r["status"], "pass");
    assert_eq!(r["check"], "my-check");

    let out = vantage_async(vec![
        "run".into(),
        component.display().to_string(),
        "--json".into(),
        "--target".into(),
        format!("{base}/error"),
    ])
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
}

#[test]
fn validate_accepts_the_example_and_names_file_line_and_key_of_errors() {
    let example = repo().join("examples/vantage.toml");
    let out = vantage(&["validate", example.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("valid, 2 check(s)"), "{}", out.stdout);
    let demo = repo().join("examples/demo.toml");
    let out = vantage(&["validate", demo.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("valid, 5 check(s)"), "{}", out.stdout);
    let restore = repo().join("examples/restore.toml");
    let out = vantage(&["validate", restore.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 restore test(s)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("shop-nightly") && out.stdout.contains("2 check(s), audited"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.is_empty(),
        "the demo has warnings: {}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("vantage.toml");
    std::fs::write(
        &bad,
        "[global]\nlocation = \"here\"\n\n[[check]]\nname = \"api\"\ncomponent = \"http.wasm\"\nevery = \"1x\"\n",
    )
    .unwrap();
    let out = vantage(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("vantage.toml:7:"), "{}", out.stderr);
    assert!(out.stderr.contains("`every`"), "{}", out.stderr);

    std::fs::write(
        &bad,
        "[[check]]\nname = \"api\"\ncomponent = \"http.wasm\"\nevery = \"1m\"\ntimeuot = \"5s\"\n",
    )
    .unwrap();
    let out = vantage(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("vantage.toml:5:"), "{}", out.stderr);
    assert!(out.stderr.contains("timeuot"), "{}", out.stderr);
}

#[test]
fn demo_runs_the_official_checks_against_its_own_endpoint() {
    let out = vantage(&[
        "demo",
        "--checks-dir",
        crate::support::checks_dir().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.matches("PASS ").count(), 2, "{}", out.stdout);
    assert!(out.stdout.contains("processing"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_granted_by_name_and_redacted_from_the_result() {
    let (_dir, secret) = crate::support::secret_file("token", "s3cr3t-value-42\n");
    // fixture_echo reads the secret named by `read_secret` and echoes it in
    // an assertion and a log line: the host must redact both.
    let (out, r) = run_json(
        "fixture_echo",
        &["--secret", &secret, "--set", "read_secret=token"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("s3cr3t-value-42"), "{}", out.stdout);
    assert!(r["assertions"].to_string().contains("[redacted]"), "{r:#}");
    assert!(r["logs"].to_string().contains("[redacted]"), "{r:#}");

    // A secret that was not granted is a typed error the check sees.
    let (out, r) = run_json("fixture_echo", &["--set", "read_secret=other"]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(r["assertions"].to_string().contains("not granted"), "{r:#}");
}
