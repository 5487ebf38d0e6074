//! The packages an operator deploys (`deploy/`): the systemd unit passes
//! `systemd-analyze verify`, keeps its sandbox (the directives, and an
//! exposure score from `systemd-analyze security` no worse than the one
//! deploy/README.md records), names only environment variables the daemon
//! reads; the Containerfile keeps its key lines. Fast: no build, no daemon.
//!
//! Needs `systemd-analyze` (Debian's `systemd`, which scripts/test-all.sh
//! installs), version 250 or later for `security --offline=yes`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{repo, vantage};

/// The exposure score recorded in deploy/README.md (systemd 252). A change
/// that raises it must say why there.
const MAX_EXPOSURE: f64 = 1.2;

fn unit_path() -> PathBuf {
    repo().join("deploy/systemd/vantage.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("reading deploy/systemd/vantage.service")
}

/// The unit's active `Key=value` lines (comments and section headers out).
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `systemd-analyze`, which these tests require: absent, they fail saying
/// what to install.
fn systemd_analyze() -> Command {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    match probe {
        Ok(out) if out.status.success() => Command::new("systemd-analyze"),
        _ => panic!(
            "systemd-analyze is not installed: install Debian's `systemd` package \
             (scripts/test-all.sh does)"
        ),
    }
}

/// A copy of the unit, still named `vantage.service`, whose `ExecStart`
/// runs the binary under test: `verify` requires the executable to exist,
/// and /usr/local/bin/vantage does not on a build machine.
fn unit_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = crate::support::vantage_bin();
    let text = unit_text().replace("/usr/local/bin/vantage", bin.to_str().unwrap());
    let path = dir.path().join("vantage.service");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (_dir, path) = unit_copy();
    let out = systemd_analyze()
        .arg("verify")
        .arg(&path)
        .output()
        .expect("running systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Other units on the machine may draw warnings; ours must draw none.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("vantage.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}",
        path.display(),
        out.status
    );
}

#[test]
fn unit_keeps_its_sandbox() {
    let text = unit_text();
    let d = directives(&text);
    let has = |key: &str, value: &str| d.iter().any(|(k, v)| k == key && v == value);
    for (key, value) in [
        ("Type", "exec"),
        (
            "ExecStart",
            "/usr/local/bin/vantage daemon --config /etc/vantage/vantage.toml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("StateDirectory", "vantage"),
        ("CacheDirectory", "vantage"),
        ("ConfigurationDirectory", "vantage"),
        ("Environment", "VANTAGE_DATA_DIR=%S/vantage"),
        ("Environment", "VANTAGE_CACHE_DIR=%C/vantage/components"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
    ] {
        assert!(has(key, value), "{key}={value} missing from the unit");
    }
    // The first SystemCallFilter= is the allow list; nothing may widen it
    // past @system-service except setpriority (the low-priority lane).
    let filters: Vec<&str> = d
        .iter()
        .filter(|(k, _)| k == "SystemCallFilter")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        filters,
        ["@system-service", "~@privileged @resources", "setpriority"]
    );
    // wasmtime compiles checks at run time (W^X would kill every run), and
    // the pooling allocator reserves far more address space than it uses.
    for key in ["MemoryDenyWriteExecute", "LimitAS", "User"] {
        assert!(
            !d.iter().any(|(k, _)| k == key),
            "{key}= must not be set (see deploy/README.md)"
        );
    }
}

#[test]
fn unit_exposure_is_at_most_the_recorded_score() {
    let (_dir, path) = unit_copy();
    let out = systemd_analyze()
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("running systemd-analyze security");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze security --offline=yes (systemd 250 or later): {}\n{stdout}{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for vantage.service:"))
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{stdout}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is above the recorded {MAX_EXPOSURE}:\n{stdout}"
    );
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level **{MAX_EXPOSURE}**")),
        "deploy/README.md does not record the exposure level {MAX_EXPOSURE}"
    );
}

#[test]
fn unit_names_only_environment_the_daemon_reads() {
    let help = vantage(&["daemon", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    let text = unit_text();
    for (_, value) in directives(&text)
        .into_iter()
        .filter(|(k, _)| k == "Environment")
    {
        let name = value.split('=').next().unwrap();
        if name.starts_with("VANTAGE_") {
            assert!(
                help.stdout.contains(&format!("[env: {name}=")),
                "the unit sets {name}, which `vantage daemon` does not read"
            );
        }
    }
}

#[test]
fn containerfile_is_distroless_nonroot_with_a_state_volume() {
    let path = repo().join("deploy/Containerfile");
    let text = std::fs::read_to_string(&path).expect("reading deploy/Containerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let has = |line: &str| lines.contains(&line);
    for line in [
        "FROM gcr.io/distroless/static-debian12:nonroot",
        "USER 65532:65532",
        "VOLUME [\"/var/lib/vantage\"]",
        "ENTRYPOINT [\"/usr/local/bin/vantage\", \"daemon\"]",
        "CMD [\"--config\", \"/etc/vantage/vantage.toml\"]",
    ] {
        assert!(has(line), "{} lacks `{line}`", path.display());
    }
    // Only the static binary goes in: nothing to run a shell or a package
    // manager with.
    assert!(
        !lines.iter().any(|l| l.starts_with("RUN ")),
        "RUN in {text}"
    );
    assert!(Path::new(&repo().join("scripts/static-build.sh")).exists());
}
