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
    assert_eq!(doc["world"], "vantage:check/check@0.2.0");
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
    // 0.2.0 keys are typed: the schema says what a value must be.
    let key = |name: &str| {
        doc["metadata"]["config"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == name)
            .unwrap_or_else(|| panic!("no key {name} in {doc:#}"))
            .clone()
    };
    let status = key("expect.status");
    assert_eq!(status["value_type"]["type"], "status-range", "{status}");
    assert_eq!(status["repeated"], true, "{status}");
    assert_eq!(status["default"], "2xx", "{status}");
    assert_eq!(key("timeout")["value_type"]["type"], "duration");
    assert_eq!(key("bearer_token")["sensitive"], true);
    assert!(
        doc["imports"]
            .to_string()
            .contains("vantage:check/http@0.2.0")
    );

    let human = vantage(&["inspect", wasm("healthz").to_str().unwrap()]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("healthz "), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("world:     vantage:check/check@0.2.0")
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
fn with_json_an_error_is_a_json_document_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"definitely not wasm").unwrap();
    for command in ["run", "inspect"] {
        let out = vantage(&[command, "--json", bogus.to_str().unwrap()]);
        assert_eq!(out.code, 3, "{command}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: stdout is not JSON ({e}): {}", out.stdout));
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(error.contains("bogus.wasm"), "{command}: {doc}");
        // The human form still goes to stderr.
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
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

/// `validate` reads every component, as the daemon will: a file that is
/// missing, not WebAssembly, a core module, or endless (`/dev/zero`) is an
/// error at its `component` key's line, and the exit code is 2.
#[test]
fn validate_reads_every_component() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text.wasm"), b"#!/bin/sh\necho not wasm\n").unwrap();
    // The header of a core module (version 1), not a component.
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let http = wasm("http");
    let check = |name: &str, component: &str| {
        format!("[[check]]\nname = \"{name}\"\ncomponent = \"{component}\"\nevery = \"1m\"\n\n")
    };
    let config = dir.path().join("vantage.toml");
    let text = [
        check("good", http.to_str().unwrap()),
        check("text", "text.wasm"),
        check("core", "core.wasm"),
        check("missing", "missing.wasm"),
        check("zero", "/dev/zero"),
        // The same broken file twice: reported at both keys.
        check("text-again", "text.wasm"),
    ]
    .concat();
    std::fs::write(&config, &text).unwrap();
    let out = vantage(&["validate", config.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("valid"), "{}", out.stdout);
    let at = |name: &str| {
        let line = text
            .lines()
            .position(|l| l == format!("name = \"{name}\""))
            .unwrap()
            + 2;
        let prefix = format!(
            "{}:{line}:13: check \"{name}\": key `component`: ",
            config.display()
        );
        out.stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no error at {prefix}:\n{}", out.stderr))
            .to_string()
    };
    assert!(at("text").contains("not WebAssembly at all"));
    assert!(at("text-again").contains("not WebAssembly at all"));
    assert!(at("core").contains("core WebAssembly module"));
    assert!(at("missing").contains("cannot read component"));
    assert!(at("zero").contains("larger than the limit of 64MiB"));
    assert_eq!(out.stderr.lines().count(), 5, "{}", out.stderr);

    // The cap is the configuration's.
    let small = format!(
        "[global]\nmax_component_size = \"64KiB\"\n\n{}",
        check("good", http.to_str().unwrap())
    );
    std::fs::write(&config, &small).unwrap();
    let out = vantage(&["validate", config.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(":6:13: check \"good\": key `component`: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("larger than the limit of 64KiB"),
        "{}",
        out.stderr
    );
}

/// `validate` checks every value against the keys the component declares
/// (WIT 0.2.0): a bad regex, duration, size or status range is an error at
/// its file, line and key, and so is an unknown key, without its value (it
/// may be a secret).
#[test]
fn validate_checks_values_against_the_components_typed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vantage.toml");
    let text = format!(
        "[[check]]\nname = \"typed\"\ncomponent = \"{}\"\nevery = \"1m\"\nallow = [\"{{target}}\"]\ntargets = [\"http://127.0.0.1:9/\"]\n\n\
         [check.config]\n\
         timeout = \"5\"\n\
         max_body_bytes = \"1 parsec\"\n\
         expect.status = [\"2xx\", \"2x9\"]\n\
         expect.body_matches = [\"(unclosed\"]\n\
         bearer_tokn = \"hunter2-secret\"\n\
         follow_redirects = \"yes\"\n",
        wasm("http").display()
    );
    std::fs::write(&config, &text).unwrap();
    let out = vantage(&["validate", config.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let at = |key: &str| {
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line of {key}"))
            + 1;
        let prefix = format!("{}:{line}:", config.display());
        out.stderr
            .lines()
            .find(|l| l.starts_with(&prefix) && l.contains(&format!("key `config.{key}")))
            .unwrap_or_else(|| panic!("no error at {prefix} for {key}:\n{}", out.stderr))
            .to_string()
    };
    assert!(at("timeout").contains("duration"));
    assert!(at("max_body_bytes").contains("size"));
    assert!(at("expect.status").contains("\"2x9\" is not a valid status range"));
    assert!(at("expect.body_matches").contains("not a valid regex"));
    let unknown = at("bearer_tokn");
    assert!(unknown.contains("unknown key"), "{unknown}");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // `yes` is a boolean, as the SDK reads it: five problems, no more, in
    // the file's order.
    let lines: Vec<usize> = out
        .stderr
        .lines()
        .map(|l| l.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", out.stderr);
    assert!(lines.is_sorted(), "{}", out.stderr);

    // Fixed, the same file validates.
    let fixed = text
        .replace("timeout = \"5\"", "timeout = \"5s\"")
        .replace("\"1 parsec\"", "\"1MiB\"")
        .replace("\"2x9\"", "\"3xx\"")
        .replace("(unclosed", "ok")
        .replace("bearer_tokn", "bearer_token");
    std::fs::write(&config, fixed).unwrap();
    let out = vantage(&["validate", config.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

/// `run` and `inspect` read a component only up to the cap: `/dev/zero`
/// is refused at once instead of being read until memory runs out.
#[test]
fn component_files_are_read_up_to_a_cap() {
    let started = std::time::Instant::now();
    let out = vantage(&["run", "/dev/zero"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("component /dev/zero is larger than the limit of 64MiB"),
        "{}",
        out.stderr
    );
    let out = vantage(&["inspect", "/dev/zero", "--max-component-size", "1MiB"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("larger than the limit of 1MiB"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // A real component over a smaller cap; the flag's range is checked.
    let http = wasm("http");
    let out = vantage(&[
        "run",
        http.to_str().unwrap(),
        "--max-component-size",
        "64KiB",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("larger than the limit of 64KiB"),
        "{}",
        out.stderr
    );
    let out = vantage(&[
        "run",
        http.to_str().unwrap(),
        "--max-component-size",
        "1KiB",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("between 64KiB and 4GiB"),
        "{}",
        out.stderr
    );
}

/// Run `vantage args` with stdout (or stderr) a pipe whose reading end is
/// closed before the process writes anything; the other stream is kept.
fn with_closed(stream: &str, args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut command = Command::new(crate::support::vantage_bin());
    command
        .args(args)
        .env("VANTAGE_CACHE_DIR", crate::support::cache_dir())
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running vantage");
    let (closed, mut kept): (Box<dyn std::any::Any>, Box<dyn std::io::Read>) = match stream {
        "stdout" => (
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ),
        _ => (
            Box::new(child.stderr.take().unwrap()),
            Box::new(child.stdout.take().unwrap()),
        ),
    };
    drop(closed);
    let mut text = String::new();
    kept.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    (status.code(), text)
}

/// `vantage … | head -1`: a closed stdout ends the command quietly (exit
/// 141, as a shell shows a tool stopped by SIGPIPE), without a panic or a
/// backtrace; a closed stderr is ignored.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let demo = repo().join("examples/demo.toml");
    let demo = demo.to_str().unwrap();
    let http = wasm("http");
    let http = http.to_str().unwrap();
    for args in [
        vec!["validate", demo],
        vec!["inspect", http],
        vec!["inspect", "--json", http],
        vec!["--help"],
        vec!["validate", "--help"],
    ] {
        let (code, stderr) = with_closed("stdout", &args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert!(
            matches!(code, Some(0) | Some(141)),
            "{args:?}: exit {code:?}"
        );
        if args[0] != "--help" && args.get(1) != Some(&"--help") {
            assert_eq!(code, Some(141), "{args:?}");
        }
    }
    // Errors go to a closed stderr: the exit code is still the command's
    // (not 101, a panic's).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("vantage.toml");
    std::fs::write(
        &bad,
        "[[check]]\nname = \"api\"\ncomponent = \"x.wasm\"\nevery = \"1x\"\n",
    )
    .unwrap();
    let (code, stdout) = with_closed("stderr", &["validate", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stdout}");
    let (code, _) = with_closed("stderr", &["run", "/nonexistent.wasm"]);
    assert_eq!(code, Some(3));
}

/// `vantage compile` fills the compiled-component cache ahead of time: a
/// file compiles once, then is cached; a configuration's components compile
/// as its daemon compiles them (the daemon then loads them from the cache);
/// a component that is not one is an error naming it, the others still
/// compile.
#[test]
fn compile_fills_the_cache_before_the_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let http = wasm("http");
    let compile = |inputs: &[&str]| {
        let mut args = vec!["compile", "--cache-dir", cache_arg];
        args.extend(inputs);
        vantage(&args)
    };
    let out = compile(&[http.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("compiled  "), "{}", out.stdout);
    let out = compile(&[http.to_str().unwrap()]);
    assert!(out.stdout.starts_with("cached    "), "{}", out.stdout);

    let config = dir.path().join("vantage.toml");
    std::fs::write(
        &config,
        format!(
            "[[check]]\nname = \"a\"\ncomponent = \"{}\"\nevery = \"1m\"\ntargets = [\"http://127.0.0.1:9/\"]\n\
             allow = [\"{{target}}\"]\n\n[[check]]\nname = \"b\"\ncomponent = \"{}\"\nevery = \"1m\"\n\
             targets = [\"http://127.0.0.1:9/\"]\nallow = [\"{{target}}\"]\n",
            wasm("healthz").display(),
            wasm("healthz").display(),
        ),
    )
    .unwrap();
    let out = compile(&[config.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // One component, used twice: compiled once.
    assert_eq!(
        out.stdout.matches("healthz.wasm").count(),
        1,
        "{}",
        out.stdout
    );
    let out = compile(&[config.to_str().unwrap()]);
    assert!(out.stdout.starts_with("cached    "), "{}", out.stdout);

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let out = compile(&[junk.to_str().unwrap(), http.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("junk.wasm"), "{}", out.stderr);
    assert!(out.stdout.contains("cached    "), "{}", out.stdout);
}
