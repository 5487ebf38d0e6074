//! The configuration examples the official checks show in their crate docs
//! (`checks/<name>/example.toml`, included with `include_str!`) are real:
//! `vantage validate` accepts each as a `vantage.toml`, and the check itself
//! accepts the example's configuration (no unknown or missing key, every
//! value parses) and gets as far as probing its targets.

use std::path::Path;

use vantage::config;

use crate::support::{repo, vantage, wasm};

/// (crate directory under `checks/`, component the example names).
const EXAMPLES: &[(&str, &str)] = &[("http", "http"), ("tcp", "tcp"), ("tls", "tls")];

/// The host of a target (`https://h/…`, `tls://h:465`, `h:443`), to pin it to
/// loopback with `--resolve`.
fn host(target: &str) -> &str {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The example, with the component it names beside it, in a fresh directory.
fn staged(dir: &Path, crate_dir: &str, component: &str) -> std::path::PathBuf {
    let example = repo().join("checks").join(crate_dir).join("example.toml");
    let file = dir.join("vantage.toml");
    std::fs::copy(&example, &file).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    std::fs::copy(wasm(component), dir.join(format!("{component}.wasm"))).unwrap();
    file
}

#[test]
fn every_check_example_validates() {
    for (crate_dir, component) in EXAMPLES {
        let dir = tempfile::tempdir().unwrap();
        let file = staged(dir.path(), crate_dir, component);
        let out = vantage(&["validate", file.to_str().unwrap()]);
        assert_eq!(
            out.code, 0,
            "checks/{crate_dir}/example.toml:\n{}\n{}",
            out.stdout, out.stderr
        );
        assert!(out.stdout.contains("valid, 1 check(s)"), "{}", out.stdout);
        assert!(
            out.stderr.is_empty(),
            "checks/{crate_dir}/example.toml has warnings: {}",
            out.stderr
        );
    }
}

/// The check runs with the example's targets and configuration, its target
/// hosts pinned to 127.0.0.1 (nothing listens on their ports, so every
/// probe fails fast): a configuration the check refused would end the run
/// before any probe, with no assertion and a summary naming the key.
#[test]
fn every_check_takes_its_example_configuration() {
    for (crate_dir, component) in EXAMPLES {
        let dir = tempfile::tempdir().unwrap();
        let file = staged(dir.path(), crate_dir, component);
        let loaded = config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let [check] = loaded.checks.as_slice() else {
            panic!("checks/{crate_dir}/example.toml should hold one check");
        };
        assert!(!check.config.is_empty(), "{crate_dir}: no [check.config]");
        let wasm = wasm(component);
        let mut args: Vec<String> = vec![
            "run".into(),
            wasm.display().to_string(),
            "--json".into(),
            "--timeout".into(),
            "5s".into(),
        ];
        for target in &check.targets {
            args.extend(["--target".into(), target.clone()]);
            args.extend(["--resolve".into(), format!("{}:127.0.0.1", host(target))]);
        }
        for (key, value) in &check.config {
            args.extend(["--set".into(), format!("{key}={value}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vantage(&args);
        let r = out.json();
        let summary = r["summary"].as_str().unwrap_or_default();
        let assertions = r["assertions"].as_array().map_or(0, Vec::len);
        assert!(
            assertions > 0,
            "{crate_dir}: the check refused the example's configuration: {summary}\n{r:#}"
        );
        for refusal in ["invalid config", "missing config", "no target"] {
            assert!(!summary.contains(refusal), "{crate_dir}: {summary}");
        }
    }
}

#[test]
fn hosts_of_targets() {
    assert_eq!(host("https://api.example.com/healthz"), "api.example.com");
    assert_eq!(host("tls://mail.example.com:465"), "mail.example.com");
    assert_eq!(host("tcp://mail.example.com:25"), "mail.example.com");
    assert_eq!(host("www.example.com:443"), "www.example.com");
}
