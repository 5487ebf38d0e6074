//! The `cpu` limit: parsed by the one limits parser of checks, `[defaults]`
//! and restore checks, with file, line and key on every error.

use super::*;

#[test]
fn cpu_is_read_from_the_check_and_from_defaults() {
    let c = load_ok(&format!(
        "[defaults]\ncpu = \"2s\"\n{HEAD}every = \"1m\"\n\n\
         [[check]]\nname = \"b\"\ncomponent = \"b.wasm\"\nevery = \"1m\"\ncpu = \"150ms\"\n"
    ));
    assert_eq!(c.defaults.cpu, Some(Duration::from_secs(2)));
    assert_eq!(c.checks[0].limits.cpu, Some(Duration::from_secs(2)));
    assert_eq!(c.checks[1].limits.cpu, Some(Duration::from_millis(150)));
    assert!(c.warnings.is_empty(), "{}", shown(&c.warnings));
    // Absent everywhere: no CPU limit.
    let c = load_ok(&check("every = \"1m\"\n"));
    assert_eq!(c.checks[0].limits.cpu, None);
}

#[test]
fn restore_checks_share_the_parser() {
    let text = "[[restore]]\nname = \"r\"\nschedule = \"s\"\nnamespaces = [\"shop\"]\n\
                cron = \"0 3 * * *\"\n\n[[restore.check]]\nname = \"api\"\n\
                component = \"a.wasm\"\ncpu = \"300ms\"\n";
    let c = load_ok(text);
    assert_eq!(
        c.restores[0].checks[0].limits.cpu,
        Some(Duration::from_millis(300))
    );
    let errors = load_err(&text.replace("\"300ms\"", "\"0s\""));
    assert_eq!(errors.len(), 1, "{}", shown(&errors));
    assert_at(&errors[0], 10, "cpu", "must be greater than zero");
}

#[test]
fn bad_cpu_values_name_file_line_and_key() {
    one_error(
        &check("every = \"1m\"\ncpu = \"0s\"\n"),
        5,
        "cpu",
        "cpu \"0s\" must be greater than zero",
    );
    one_error(
        &check("every = \"1m\"\ncpu = \"lots\"\n"),
        5,
        "cpu",
        "invalid duration \"lots\"",
    );
    one_error(
        &check("every = \"1m\"\ncpu = 2\n"),
        5,
        "cpu",
        "expected a string with a unit, like cpu = \"2s\"",
    );
    let d = one_error(
        &format!("[defaults]\ncpu = \"-1s\"\n{HEAD}every = \"1m\"\n"),
        2,
        "cpu",
        "cpu",
    );
    assert_eq!(d.context.as_deref(), Some("[defaults]"));
}

#[test]
fn a_cpu_limit_the_timeout_always_beats_is_a_warning() {
    let c = load_ok(&check("every = \"1m\"\ntimeout = \"1s\"\ncpu = \"1s\"\n"));
    assert_eq!(c.warnings.len(), 1, "{}", shown(&c.warnings));
    let w = c.warnings[0].to_string();
    assert!(w.starts_with(&format!("{FILE}:6:")), "{w}");
    assert!(
        w.contains("key `cpu`: cpu 1s is not below timeout 1s"),
        "{w}"
    );
    // Inherited from [defaults], made moot by the check's own timeout: the
    // warning points at that timeout.
    let c = load_ok(&format!(
        "[defaults]\ncpu = \"5s\"\n{HEAD}every = \"1m\"\ntimeout = \"2s\"\n"
    ));
    assert_eq!(c.warnings.len(), 1, "{}", shown(&c.warnings));
    assert!(c.warnings[0].to_string().starts_with(&format!("{FILE}:7:")));
}
