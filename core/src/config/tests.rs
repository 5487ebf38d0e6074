//! Tests of loading whole files: the model a valid file gives, and the place
//! and wording of each error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::policy::AllowList;

const FILE: &str = "conf/vantage.toml";

fn load_ok(text: &str) -> Config {
    from_str(text, Path::new(FILE)).unwrap_or_else(|e| panic!("should load:\n{e}"))
}

fn load_err(text: &str) -> Vec<Diagnostic> {
    match from_str(text, Path::new(FILE)) {
        Ok(c) => panic!("should fail, loaded {c:#?}"),
        Err(e) => {
            // Display prints every diagnostic, one per line.
            let shown = e.to_string();
            assert_eq!(shown.lines().count(), e.diagnostics().len(), "{shown}");
            e.diagnostics().to_vec()
        }
    }
}

/// The only error of `text` is at `line`, about `key`, and mentions `needle`.
#[track_caller]
fn one_error(text: &str, line: usize, key: &str, needle: &str) -> Diagnostic {
    let errors = load_err(text);
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got:\n{}",
        shown(&errors)
    );
    let d = errors.into_iter().next().unwrap();
    assert_at(&d, line, key, needle);
    d
}

#[track_caller]
fn assert_at(d: &Diagnostic, line: usize, key: &str, needle: &str) {
    let text = d.to_string();
    assert!(
        text.starts_with(&format!("{FILE}:{line}:")),
        "wrong line: {text}"
    );
    assert!(
        text.contains(&format!("key `{key}`: ")),
        "wrong key: {text}"
    );
    assert!(text.contains(needle), "missing {needle:?}: {text}");
    assert_eq!(d.severity, Severity::Error, "{text}");
}

fn shown(ds: &[Diagnostic]) -> String {
    ds.iter().map(|d| format!("{d}\n")).collect()
}

const FULL: &str = r#"
[global]
location = "eu-west-1"
data_dir = "state"
allow_ceiling = ["https://*", "http://*"]

[defaults]
timeout = "10s"
memory = "64MiB"
fuel = 1000000000

[[check]]
name = "api-health"
component = "checks/target/wasm32-wasip2/release/http.wasm"
every = "1m"
jitter = "5s"
targets = ["https://api.example.com/healthz", "https://api.example.com/ready"]
allow = ["{target}", "https://*.cdn.example.net"]
timeout = "5s"
memory = "32MiB"
fuel = 500000000
mode = "edge"
[check.secrets]
token = "env:API_TOKEN"
ca = "file:secrets/ca.pem"
[check.config]
method = "GET"
expect.status = [200, 204]
headers.Accept = "application/json"
headers.Authorization = "Bearer {{secret.token}}"

[[check]]
name = "nightly_restore"
component = "oci://ghcr.io/acme/restore-check:1.2"
cron = "0 3 * * *"
mode = "restore"
"#;

#[test]
fn a_full_example_loads_into_the_model() {
    let c = load_ok(FULL);
    assert_eq!(c.source, PathBuf::from(FILE));
    assert_eq!(c.global.location, "eu-west-1");
    assert_eq!(c.global.data_dir, Some(PathBuf::from("conf/state")));
    assert_eq!(
        c.global.allow_ceiling,
        Some(AllowList::parse(["https://*", "http://*"]).unwrap())
    );
    assert_eq!(
        c.defaults,
        Limits {
            timeout: Duration::from_secs(10),
            memory: 64 << 20,
            fuel: Some(1_000_000_000),
            cpu: None,
        }
    );
    assert!(c.warnings.is_empty(), "{}", shown(&c.warnings));
    assert_eq!(c.checks.len(), 2);

    let api = &c.checks[0];
    assert_eq!(api.name, "api-health");
    assert_eq!(
        api.component,
        ComponentRef::Path("conf/checks/target/wasm32-wasip2/release/http.wasm".into())
    );
    assert_eq!(api.schedule, Schedule::Every(Duration::from_secs(60)));
    assert_eq!(api.schedule.to_string(), "every 1m");
    assert_eq!(api.jitter, Duration::from_secs(5));
    assert_eq!(
        api.targets,
        [
            "https://api.example.com/healthz",
            "https://api.example.com/ready"
        ]
    );
    // `{target}` expands once per distinct origin, in order.
    assert_eq!(
        api.allow.to_string(),
        "[https://api.example.com, https://*.cdn.example.net]"
    );
    assert_eq!(
        api.limits,
        Limits {
            timeout: Duration::from_secs(5),
            memory: 32 << 20,
            fuel: Some(500_000_000),
            cpu: None,
        }
    );
    assert_eq!(api.mode, Mode::Edge);
    assert_eq!(
        api.secrets,
        [
            (
                "ca".to_string(),
                SecretSource::File("conf/secrets/ca.pem".into())
            ),
            ("token".to_string(), SecretSource::Env("API_TOKEN".into())),
        ]
    );
    let config: Vec<(&str, &str)> = api
        .config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        config,
        [
            ("expect.status.0", "200"),
            ("expect.status.1", "204"),
            ("headers.Accept", "application/json"),
            ("headers.Authorization", "Bearer {{secret.token}}"),
            ("method", "GET"),
        ]
    );

    let restore = &c.checks[1];
    assert_eq!(restore.name, "nightly_restore");
    assert_eq!(
        restore.component,
        ComponentRef::Oci("oci://ghcr.io/acme/restore-check:1.2".into())
    );
    assert!(matches!(&restore.schedule, Schedule::Cron(expr, _) if expr == "0 3 * * *"));
    assert_eq!(restore.schedule.to_string(), "cron 0 3 * * *");
    assert_eq!(restore.jitter, Duration::ZERO);
    assert!(restore.targets.is_empty());
    assert!(restore.allow.is_empty());
    assert!(restore.secrets.is_empty());
    assert!(restore.config.is_empty());
    assert_eq!(restore.mode, Mode::Restore);
    // Inherited from [defaults].
    assert_eq!(restore.limits, c.defaults);
}

#[test]
fn a_minimal_file_gets_built_in_defaults() {
    let c = load_ok("[[check]]\nname = \"a\"\ncomponent = \"/abs/a.wasm\"\nevery = \"30s\"\n");
    assert_eq!(c.global, Global::default());
    assert_eq!(c.global.location, "local");
    assert_eq!(c.global.data_dir, None);
    assert_eq!(c.global.allow_ceiling, None);
    assert_eq!(c.defaults, Limits::default());
    let check = &c.checks[0];
    assert_eq!(check.component, ComponentRef::Path("/abs/a.wasm".into()));
    assert_eq!(check.limits, Limits::default());
    assert_eq!(check.mode, Mode::Edge);
    assert!(check.allow.is_empty(), "deny by default");
}

#[test]
fn relative_paths_follow_the_config_file() {
    let text = "[[check]]\nname = \"a\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n";
    let c = from_str(text, Path::new("vantage.toml")).unwrap();
    assert_eq!(c.checks[0].component, ComponentRef::Path("a.wasm".into()));
    let c = from_str(text, Path::new("/etc/vantage/vantage.toml")).unwrap();
    assert_eq!(
        c.checks[0].component,
        ComponentRef::Path("/etc/vantage/a.wasm".into())
    );
}

#[test]
fn load_reads_the_file_and_names_it_on_failure() {
    let dir = std::env::temp_dir().join(format!("vantage-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vantage.toml");
    std::fs::write(
        &path,
        "[[check]]\nname = \"a\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n",
    )
    .unwrap();
    let c = load(&path).unwrap();
    assert_eq!(
        c.checks[0].component,
        ComponentRef::Path(dir.join("a.wasm"))
    );
    std::fs::write(
        &path,
        "[[check]]\nname = \"a\"\ncomponent = \"a.wasm\"\nevery = \"1x\"\n",
    )
    .unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:4:9: ", path.display())), "{e}");
    let missing = dir.join("missing.toml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_documented_example_error_is_exact() {
    let text = "\n\n\n\n\n\n\n\n\n\n\n[[check]]\nname = \"api-health\"\nevery = \"1x\"\ncomponent = \"x.wasm\"\n";
    let errors = load_err(text);
    assert_eq!(
        errors[0].to_string(),
        "conf/vantage.toml:14:9: check \"api-health\": key `every`: invalid duration \"1x\": \
         expected a number followed by a unit like 30s, 1m, 2h"
    );
}

#[test]
fn toml_syntax_errors_name_line_column_and_key() {
    let d = one_error(
        "[global]\nlocation = \"eu\n",
        2,
        "location",
        "invalid basic string",
    );
    assert_eq!(d.context.as_deref(), Some("[global]"));
    let errors = load_err("[[check]]\nname = \"a\"\nevery = \n");
    assert!(
        errors[0].to_string().starts_with(&format!("{FILE}:3:")),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].to_string().contains("check \"a\": key `every`"),
        "{}",
        errors[0]
    );
    // Syntax errors are labelled like other errors: check name, dotted key.
    let text =
        format!("{HEAD}every = \"1m\"\n[[check]]\nname = \"b\"\n[check.config]\nmethod = GET\n");
    let errors = load_err(&text);
    let shown = errors[0].to_string();
    let expected = format!("{FILE}:8:10: check \"b\": key `config.method`: ");
    assert!(shown.starts_with(&expected), "{shown}");
    let errors = load_err("[[check]]\ncomponent = \"a\"\n[[check]]\nevery = 1x\n");
    assert_eq!(
        errors[0].context.as_deref(),
        Some("check #2"),
        "{}",
        errors[0]
    );
    let errors = load_err("[[check]\nname = \"a\"\n");
    assert!(
        errors[0].to_string().starts_with(&format!("{FILE}:1:")),
        "{}",
        errors[0]
    );
    let errors = load_err("[[check]]\nname = \"a\"\nname = \"b\"\n");
    assert!(
        errors[0].to_string().starts_with(&format!("{FILE}:3:")),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].to_string().contains("duplicate key"),
        "{}",
        errors[0]
    );
}

#[test]
fn unknown_keys_name_the_key_and_the_valid_ones() {
    let d = one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevry = \"1m\"\n",
        4,
        "evry",
        "unknown field `evry`, expected one of",
    );
    assert!(d.to_string().contains("`every`"), "{d}");
    assert_eq!(d.context.as_deref(), Some("check \"api\""));
    assert_eq!(d.column, 1);
    let d = one_error(
        "[globl]\nlocation = \"x\"\n",
        1,
        "globl",
        "unknown field `globl`",
    );
    assert_eq!(d.context, None);
    one_error(
        "[global]\nlocaton = \"x\"\n",
        2,
        "locaton",
        "unknown field `locaton`",
    );
    one_error(
        "[defaults]\ntimeout = \"1s\"\nmem = \"1MiB\"\n",
        3,
        "mem",
        "unknown field `mem`",
    );
}

#[test]
fn wrong_types_name_the_key() {
    let d = one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\nfuel = \"lots\"\n",
        5,
        "fuel",
        "invalid type: string \"lots\"",
    );
    assert_eq!(d.column, 8);
    one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\nfuel = -3\n",
        5,
        "fuel",
        "invalid value: integer `-3`",
    );
    one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\nmode = \"Edge\"\n",
        5,
        "mode",
        "unknown variant `Edge`, expected `edge` or `restore`",
    );
    one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\nallow = \"https://x.com\"\n",
        5,
        "allow",
        "expected a sequence",
    );
    let d = one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\nallow = [\"https://x.com\", 3]\n",
        5,
        "allow[1]",
        "invalid type: integer",
    );
    assert_eq!(d.column, 27);
    one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n[check.secrets]\ntoken = 5\n",
        6,
        "secrets.token",
        "invalid type: integer",
    );
}

#[test]
fn values_with_units_must_be_strings() {
    one_error(
        "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = 60\n",
        4,
        "every",
        "expected a string with a unit, like every = \"1m\"; found integer 60",
    );
    one_error(
        "[defaults]\nmemory = 64\n[[check]]\nname = \"a\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n",
        2,
        "memory",
        "like memory = \"64MiB\"",
    );
}

const HEAD: &str = "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\n";

/// A check whose 4th line onwards is `rest`.
fn check(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

#[test]
fn missing_required_keys_point_at_the_check() {
    one_error(
        "\n[[check]]\ncomponent = \"a.wasm\"\nevery = \"1m\"\n",
        2,
        "name",
        "missing",
    );
    let d = one_error(
        "[[check]]\nname = \"api\"\nevery = \"1m\"\n",
        1,
        "component",
        "missing",
    );
    assert_eq!(d.context.as_deref(), Some("check \"api\""));
    one_error(
        HEAD,
        1,
        "every",
        "missing schedule: set every = \"1m\" or cron",
    );
}

#[test]
fn unnamed_checks_are_numbered() {
    let errors = load_err(&format!(
        "{HEAD}every = \"1m\"\n[[check]]\ncomponent = \"b.wasm\"\nevery = \"1m\"\n"
    ));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].context.as_deref(), Some("check #2"));
}

#[test]
fn bad_names_and_duplicates() {
    one_error(
        "[[check]]\nname = \"API Health\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n",
        2,
        "name",
        "invalid check name \"API Health\"",
    );
    one_error(
        "[[check]]\nname = \"-x\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n",
        2,
        "name",
        "starting with a letter or digit",
    );
    let text = format!(
        "{HEAD}every = \"1m\"\n\n[[check]]\nname = \"other\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n\n{HEAD}every = \"1m\"\n"
    );
    let d = one_error(
        &text,
        12,
        "name",
        "duplicate check name \"api\": line 2 already defines",
    );
    assert_eq!(d.column, 8);
}

#[test]
fn schedule_errors() {
    one_error(
        &check("every = \"1m\"\ncron = \"* * * * *\"\n"),
        5,
        "cron",
        "`every` and `cron` are both set: keep exactly one",
    );
    one_error(
        &check("cron = \"* * * * *\"\nevery = \"1m\"\n"),
        5,
        "every",
        "both set",
    );
    one_error(
        &check("cron = \"*/5 * * *\"\n"),
        4,
        "cron",
        "invalid cron expression \"*/5 * * *\"",
    );
    one_error(
        &check("cron = \"61 * * * *\"\n"),
        4,
        "cron",
        "invalid cron expression",
    );
    one_error(
        &check("every = \"500ms\"\n"),
        4,
        "every",
        "too short: the minimum is 1s",
    );
    one_error(
        &check("every = \"1m\"\njitter = \"soon\"\n"),
        5,
        "jitter",
        "invalid duration \"soon\"",
    );
    let c = load_ok(&check("cron = \"@hourly\"\n"));
    assert!(matches!(c.checks[0].schedule, Schedule::Cron(..)));
    let c = load_ok(&check("cron = \"30 */5 * * * *\"\n"));
    assert_eq!(c.checks[0].schedule.to_string(), "cron 30 */5 * * * *");
}

#[test]
fn limit_errors() {
    one_error(
        &check("every = \"1m\"\ntimeout = \"0s\"\n"),
        5,
        "timeout",
        "must be greater than zero",
    );
    one_error(
        &check("every = \"1m\"\nmemory = \"512KiB\"\n"),
        5,
        "memory",
        "below the minimum of 1MiB",
    );
    one_error(
        &check("every = \"1m\"\nmemory = \"5GiB\"\n"),
        5,
        "memory",
        "above the maximum of 4GiB",
    );
    one_error(
        &check("every = \"1m\"\nmemory = \"64M\"\n"),
        5,
        "memory",
        "invalid size \"64M\"",
    );
    one_error(
        &check("every = \"1m\"\nfuel = 0\n"),
        5,
        "fuel",
        "fuel must be at least 1",
    );
    let d = one_error(
        &format!("[defaults]\ntimeout = \"ten\"\n{HEAD}every = \"1m\"\n"),
        2,
        "timeout",
        "invalid duration \"ten\"",
    );
    assert_eq!(d.context.as_deref(), Some("[defaults]"));
    one_error(
        &format!("[defaults]\nfuel = 0\n{HEAD}every = \"1m\"\n"),
        2,
        "fuel",
        "at least 1",
    );
}

#[test]
fn component_errors() {
    one_error(
        "[[check]]\nname = \"a\"\ncomponent = \"\"\nevery = \"1m\"\n",
        3,
        "component",
        "the component is empty",
    );
    one_error(
        "[[check]]\nname = \"a\"\ncomponent = \"oci://\"\nevery = \"1m\"\n",
        3,
        "component",
        "invalid registry reference",
    );
    one_error(
        "[[check]]\nname = \"a\"\ncomponent = \"https://x.com/a.wasm\"\nevery = \"1m\"\n",
        3,
        "component",
        "unsupported component source https://",
    );
}

#[test]
fn allow_pattern_errors_name_the_pattern_and_the_reason() {
    let d = one_error(
        &check(
            "every = \"1m\"\nallow = [\n  \"https://ok.example.com\",\n  \"https://api.example.com/v1\",\n]\n",
        ),
        7,
        "allow",
        "invalid allow pattern \"https://api.example.com/v1\": a path is not allowed",
    );
    assert_eq!(d.column, 3);
    assert!(d.message.contains("write https://api.example.com"), "{d}");
    one_error(
        &check("every = \"1m\"\nallow = [\"api.*.example.com\"]\n"),
        5,
        "allow",
        "the scheme is missing",
    );
}

#[test]
fn target_placeholder_needs_url_targets() {
    let d = one_error(
        &check(
            "every = \"1m\"\ntargets = [\n  \"https://ok.example.com\",\n  \"db.internal\",\n]\nallow = [\"{target}\"]\n",
        ),
        7,
        "targets",
        "target \"db.internal\" is not a URL, so `{target}` cannot stand for it",
    );
    assert!(d.message.contains("e.g. https://db.internal"), "{d}");
    // Without `{target}`, targets may be anything.
    load_ok(&check(
        "every = \"1m\"\ntargets = [\"db.internal\"]\nallow = [\"tcp://db.internal:5432\"]\n",
    ));
    // tcp targets expand too, and a bare host:port is one (one rule with
    // `vantage run` and the restore tests).
    for target in ["tcp://db.internal:5432", "db.internal:5432"] {
        let c = load_ok(&check(&format!(
            "every = \"1m\"\ntargets = [\"{target}\"]\nallow = [\"{{target}}\"]\n"
        )));
        assert_eq!(c.checks[0].allow.to_string(), "[tcp://db.internal:5432]");
    }
}

#[test]
fn ceiling_limits_every_check() {
    let text = format!(
        "[global]\nallow_ceiling = [\"https://*.example.com\"]\n{HEAD}every = \"1m\"\n\
         targets = [\"http://api.example.com/\"]\nallow = [\"https://api.example.com\", \"{{target}}\", \"https://evil.net\"]\n"
    );
    let errors = load_err(&text);
    assert_eq!(errors.len(), 2, "{}", shown(&errors));
    assert_at(
        &errors[0],
        8,
        "allow",
        "allow pattern http://api.example.com is outside the operator's allow ceiling [https://*.example.com]",
    );
    assert!(
        errors[0]
            .message
            .contains("from `{target}` for target \"http://api.example.com/\"")
    );
    assert_eq!(errors[0].column, 37);
    assert_at(
        &errors[1],
        8,
        "allow",
        "allow pattern https://evil.net is outside",
    );
    assert_eq!(errors[1].column, 49);

    // A wildcard ceiling does not let a check opt in to special addresses.
    let text = format!(
        "[global]\nallow_ceiling = [\"http://*\"]\n{HEAD}every = \"1m\"\nallow = [\"http://169.254.169.254\"]\n"
    );
    one_error(&text, 7, "allow", "never covers special addresses");

    let text = format!(
        "[global]\nallow_ceiling = [\"https://x.com/\", \"{{target}}\"]\n{HEAD}every = \"1m\"\n"
    );
    let errors = load_err(&text);
    assert_eq!(errors.len(), 2, "{}", shown(&errors));
    assert_at(
        &errors[0],
        2,
        "allow_ceiling",
        "a trailing `/` is not allowed",
    );
    assert_at(
        &errors[1],
        2,
        "allow_ceiling",
        "`{target}` only works in a check's `allow` list",
    );
    assert_eq!(errors[0].context.as_deref(), Some("[global]"));
}

#[test]
fn secret_errors() {
    one_error(
        &check("every = \"1m\"\n[check.secrets]\ntoken = \"API_TOKEN\"\n"),
        6,
        "secrets.token",
        "invalid secret source \"API_TOKEN\": expected env:VARIABLE or file:/path/to/file",
    );
    one_error(
        &check("every = \"1m\"\n[check.secrets]\n\"my token\" = \"env:X\"\n"),
        6,
        "secrets.my token",
        "invalid secret name",
    );
    let d = one_error(
        &check(
            "every = \"1m\"\n[check.config]\nurl = \"/\"\nheaders.Authorization = \"Bearer {{secret.token}}\"\n",
        ),
        7,
        "config.headers.Authorization",
        "no secret \"token\" is granted: add it under [check.secrets]",
    );
    assert_eq!(d.column, 25);
}

#[test]
fn global_errors() {
    one_error(
        &format!("[global]\nlocation = \"\"\n{HEAD}every = \"1m\"\n"),
        2,
        "location",
        "the location is empty",
    );
    one_error(
        &format!("[global]\ndata_dir = \" \"\n{HEAD}every = \"1m\"\n"),
        2,
        "data_dir",
        "the path is empty",
    );
}

#[test]
fn every_second_stage_error_is_reported_in_file_order() {
    let text = r#"[global]
location = ""

[[check]]
name = "a"
component = "a.wasm"
every = "1x"
memory = "1B"
allow = ["https://x.com/path"]

[[check]]
name = "a"
component = "b.wasm"
cron = "nope"
[check.secrets]
t = "vault:t"
"#;
    let errors = load_err(text);
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|d| (d.line, d.key.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        got,
        [
            (2, "location"),
            (7, "every"),
            (8, "memory"),
            (9, "allow"),
            (12, "name"),
            (14, "cron"),
            (16, "secrets.t"),
        ],
        "{}",
        shown(&errors)
    );
    // Display: all of them, one per line.
    let e = from_str(text, Path::new(FILE)).unwrap_err().to_string();
    assert_eq!(e.lines().count(), 7);
    assert!(e.lines().all(|l| l.starts_with(FILE)), "{e}");
}

#[test]
fn warnings_are_kept_but_do_not_fail() {
    let c = load_ok(&check(
        "every = \"10s\"\njitter = \"10s\"\ntimeout = \"30s\"\ntargets = [\"https://x.com/\"]\n",
    ));
    let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with(&format!(
            "{FILE}:5:10: warning: check \"api\": key `jitter`: "
        )),
        "{}",
        w[0]
    );
    assert!(w[1].contains("key `timeout`"), "{}", w[1]);
    assert!(
        w[2].contains("key `targets`: the check has targets but no `allow`"),
        "{}",
        w[2]
    );
    assert!(c.checks[0].allow.is_empty());

    let c = load_ok(&check("every = \"1m\"\nallow = [\"{target}\"]\n"));
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].message.contains("no `targets`"));

    let c = load_ok("[global]\nlocation = \"x\"\n");
    assert!(c.checks.is_empty());
    assert!(
        c.warnings[0]
            .to_string()
            .contains("no [[check]] is defined")
    );
}

#[test]
fn inline_tables_and_arrays_of_checks_work() {
    let c = load_ok(
        "check = [{ name = \"a\", component = \"a.wasm\", every = \"1m\", config = { x = 1 } }]\n",
    );
    assert_eq!(c.checks[0].config, [("x".to_string(), "1".to_string())]);
    let d = one_error(
        "check = [{ name = \"a\", component = \"a.wasm\", every = \"1m\", evry = 1 }]\n",
        1,
        "evry",
        "unknown field",
    );
    assert_eq!(d.context.as_deref(), Some("check \"a\""));
}

// ---- daemon settings: [global] additions, [alerts], [[maintenance]], state ----

const MINIMAL_CHECK: &str =
    "[[check]]\nname = \"api\"\ncomponent = \"http.wasm\"\nevery = \"1m\"\n";

#[test]
fn daemon_settings_load_with_defaults() {
    let c = load_ok(MINIMAL_CHECK);
    assert_eq!(c.global.concurrency, 64);
    assert_eq!(c.global.listen, None);
    assert_eq!(c.alerts, Alerting::default());
    let check = &c.checks[0];
    assert_eq!(
        (
            check.failure_threshold,
            check.success_threshold,
            check.retries
        ),
        (1, 1, 0)
    );
    assert_eq!(check.severity, "critical");
    assert_eq!(check.timezone, chrono_tz::Tz::UTC);
    assert!(!check.allow_insecure);
}

#[test]
fn daemon_settings_are_read() {
    let text = format!(
        "[global]\nlisten = \"127.0.0.1:9999\"\nconcurrency = 8\nhistory_max_age = \"7d\"\n\
         history_max_runs = 50\nshutdown_grace = \"5s\"\npublic_url = \"https://status.example.com/\"\n\
         [alerts]\nalertmanager = [\"http://127.0.0.1:9093\"]\nwebhooks = [\"https://hooks.example.com/x\"]\n\
         resend = \"30s\"\n\
         {MINIMAL_CHECK}failure_threshold = 3\nsuccess_threshold = 2\nretries = 1\nretry_delay = \"2s\"\n\
         severity = \"warning\"\nallow_insecure = true\n\
         [[maintenance]]\nname = \"deploy\"\nchecks = [\"api\"]\ncron = \"0 2 * * *\"\nduration = \"30m\"\n\
         timezone = \"Europe/Berlin\"\n\
         [[maintenance]]\nname = \"migration\"\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T04:00:00+00:00\"\n"
    );
    let c = load_ok(&text);
    assert_eq!(c.global.listen, Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(c.global.concurrency, 8);
    assert_eq!(c.global.history_max_age, Duration::from_secs(7 * 86400));
    assert_eq!(c.global.history_max_runs, 50);
    assert_eq!(c.global.shutdown_grace, Duration::from_secs(5));
    assert_eq!(
        c.global.public_url.as_deref(),
        Some("https://status.example.com")
    );
    assert_eq!(c.alerts.alertmanagers[0].as_str(), "http://127.0.0.1:9093/");
    assert_eq!(c.alerts.webhooks.len(), 1);
    assert_eq!(c.alerts.resend, Duration::from_secs(30));
    let check = &c.checks[0];
    assert_eq!(
        (
            check.failure_threshold,
            check.success_threshold,
            check.retries
        ),
        (3, 2, 1)
    );
    assert_eq!(check.retry_delay, Duration::from_secs(2));
    assert_eq!(check.severity, "warning");
    assert!(check.allow_insecure);
    assert_eq!(c.maintenance.len(), 2);

    // 02:10 in Berlin (01:10Z in winter) is inside the recurring window, 02:40 is not.
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let deploy = &c.maintenance[0];
    assert!(deploy.covers("api", at("2026-12-05T01:10:00Z")));
    assert!(!deploy.covers("api", at("2026-12-05T01:40:00Z")));
    assert!(!deploy.covers("other", at("2026-12-05T01:10:00Z")));
    let migration = &c.maintenance[1];
    assert!(migration.covers("anything", at("2026-12-01T03:59:59Z")));
    assert!(!migration.covers("anything", at("2026-12-01T04:00:00Z")));
}

#[test]
fn daemon_setting_errors_name_line_and_key() {
    one_error("[global]\nlisten = \"localhost\"\n", 2, "listen", "IP:PORT");
    one_error("[global]\nconcurrency = 0\n", 2, "concurrency", "between 1");
    one_error(
        &format!("[alerts]\nalertmanager = [\"ftp://x\"]\n{MINIMAL_CHECK}"),
        2,
        "alertmanager",
        "http(s) URL",
    );
    one_error(
        &format!("{MINIMAL_CHECK}failure_threshold = 0\n"),
        5,
        "failure_threshold",
        "between 1 and 1000",
    );
    one_error(
        &format!("{MINIMAL_CHECK}retries = 11\n"),
        5,
        "retries",
        "between 0 and 10",
    );
    one_error(
        &format!("{MINIMAL_CHECK}timezone = \"Mars/Olympus\"\n"),
        5,
        "timezone",
        "IANA name",
    );
    one_error(
        &format!(
            "{MINIMAL_CHECK}[[maintenance]]\nname = \"m\"\nchecks = [\"nope\"]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\n"
        ),
        7,
        "checks",
        "no check named \"nope\"",
    );
    one_error(
        &format!(
            "{MINIMAL_CHECK}[[maintenance]]\nname = \"m\"\nstart = \"2026-12-01T04:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\n"
        ),
        8,
        "end",
        "ends before it starts",
    );
    one_error(
        &format!(
            "{MINIMAL_CHECK}[[maintenance]]\nname = \"m\"\nstart = \"tomorrow\"\nend = \"2026-12-01T03:00:00Z\"\n"
        ),
        7,
        "start",
        "RFC 3339",
    );
    one_error(
        &format!("{MINIMAL_CHECK}[[maintenance]]\nname = \"m\"\ncron = \"0 2 * * *\"\n"),
        5,
        "start",
        "either start and end",
    );
}

mod cpu;
mod limits;
mod multins;
mod remote_write;
mod restore;
mod restore_stateful;
