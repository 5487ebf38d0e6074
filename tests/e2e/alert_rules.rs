//! The example alert rules (`examples/prometheus/`) are valid and do what
//! their comments say, checked by Prometheus' own `promtool` (Debian package
//! `prometheus`): the multi-location rule fires when 2 of 3 locations fail
//! and stays quiet when only one does.

use std::process::Command;

use crate::support::repo;

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool(args: &[&str]) -> (bool, String) {
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing (Debian package `prometheus`): run `bash scripts/test-all.sh`"
    );
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(repo().join("examples/prometheus"))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn example_rules_are_valid() {
    let (ok, out) = promtool(&["check", "rules", "vantage-rules.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn example_rules_pass_their_unit_tests() {
    let (ok, out) = promtool(&["test", "rules", "vantage-rules.test.yml"]);
    assert!(ok, "{out}");
}
