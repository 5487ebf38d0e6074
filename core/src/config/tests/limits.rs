//! Ranges: every duration key has one (huge values used to overflow the
//! schedule's millisecond arithmetic), `max_component_size`, crons that can
//! never fire, and where each `component` key is.

use super::*;

const CHECK: &str = "[[check]]\nname = \"api\"\ncomponent = \"http.wasm\"\n";

/// A check with `every = "1m"` and the extra line `line` (at line 5).
fn check_with(line: &str) -> String {
    format!("{CHECK}every = \"1m\"\n{line}\n")
}

#[test]
fn huge_intervals_are_errors_not_overflows() {
    // 2^61 + 5 seconds displayed as 73 billion years and ran every 5 s.
    for every in [
        "2305843009213693957s",
        "18446744073709551615s",
        "9999999999y",
        "367d",
    ] {
        let text = format!("{CHECK}every = \"{every}\"\n");
        one_error(&text, 4, "every", "too long");
    }
    let d = one_error(
        &format!("{CHECK}every = \"367d\"\n"),
        4,
        "every",
        "the maximum is 366d",
    );
    assert!(
        d.to_string()
            .starts_with("conf/vantage.toml:4:9: check \"api\": key `every`")
    );
    assert_eq!(
        load_ok(&format!("{CHECK}every = \"366d\"\n")).checks[0].schedule,
        Schedule::Every(Duration::from_secs(366 * 86400))
    );
    // The minimum is unchanged.
    one_error(
        &format!("{CHECK}every = \"500ms\"\n"),
        4,
        "every",
        "too short: the minimum is 1s",
    );
}

#[test]
fn every_duration_key_has_a_range() {
    // (line to add, key, its line, what the error says)
    let check_cases = [
        ("timeout = \"25h\"", "timeout", "the maximum is 1d"),
        ("timeout = \"0s\"", "timeout", "greater than zero"),
        ("jitter = \"400d\"", "jitter", "the maximum is 366d"),
        ("retry_delay = \"2h\"", "retry_delay", "the maximum is 1h"),
    ];
    for (line, key, needle) in check_cases {
        one_error(&check_with(line), 5, key, needle);
    }
    let sections = [
        (
            "[global]\nshutdown_grace = \"2h\"\n",
            "shutdown_grace",
            "the maximum is 1h",
        ),
        (
            "[global]\nhistory_max_age = \"3651d\"\n",
            "history_max_age",
            "too long",
        ),
        (
            "[defaults]\ntimeout = \"2d\"\n",
            "timeout",
            "the maximum is 1d",
        ),
        (
            "[alerts]\nresend = \"31d\"\n",
            "resend",
            "the maximum is 30d",
        ),
    ];
    for (section, key, needle) in sections {
        one_error(
            &format!("{section}\n{CHECK}every = \"1m\"\n"),
            2,
            key,
            needle,
        );
    }
    let window = "[[maintenance]]\nname = \"m\"\ncron = \"0 2 * * *\"\nduration = \"400d\"\n";
    one_error(
        &format!("{CHECK}every = \"1m\"\n{window}"),
        8,
        "duration",
        "too long",
    );
    // Any duration beyond 10 years is refused by the parser itself.
    let e = parse_duration("3651d").unwrap_err().0;
    assert!(e.contains("the maximum of any duration is 3650d"), "{e}");
    let e = parse_duration("18446744073709551616s").unwrap_err().0;
    assert!(e.contains("too long"), "{e}");
    assert!(parse_timeout("24h").is_ok());
    assert!(parse_timeout("24h 1s").unwrap_err().0.contains("too long"));
}

#[test]
fn restore_durations_have_ranges() {
    let base =
        "[[restore]]\nname = \"r\"\nschedule = \"s\"\nnamespaces = [\"shop\"]\nevery = \"24h\"\n";
    for (line, key, needle) in [
        (
            "restore_timeout = \"8d\"",
            "restore_timeout",
            "the maximum is 7d",
        ),
        (
            "ready_timeout = \"8d\"",
            "ready_timeout",
            "the maximum is 7d",
        ),
        ("ttl = \"31d\"", "ttl", "the maximum is 30d"),
        ("rto = \"31d\"", "rto", "the maximum is 30d"),
        (
            "poll_interval = \"2h\"",
            "poll_interval",
            "the maximum is 1h",
        ),
        ("every = \"400d\"", "every", "too long"),
    ] {
        let text = if key == "every" {
            base.replace("every = \"24h\"", line)
        } else {
            format!("{base}{line}\n")
        };
        let errors = load_err(&text);
        assert!(
            errors
                .iter()
                .any(|d| d.key.as_deref() == Some(key) && d.message.contains(needle)),
            "{key}: {}",
            shown(&errors)
        );
    }
}

#[test]
fn a_cron_that_never_fires_is_an_error() {
    for cron in ["* * 31 2 *", "0 0 30 2 *", "0 0 31 4 *"] {
        let text = format!("{CHECK}cron = \"{cron}\"\n");
        one_error(&text, 4, "cron", "never matches within the next 5 years");
    }
    // 29 February comes round within 5 years.
    load_ok(&format!("{CHECK}cron = \"0 0 29 2 *\"\n"));
    let window = "[[maintenance]]\nname = \"m\"\ncron = \"0 0 31 11 *\"\nduration = \"1h\"\n";
    one_error(
        &format!("{CHECK}every = \"1m\"\n{window}"),
        7,
        "cron",
        "never matches",
    );
}

#[test]
fn max_component_size_is_a_bounded_size() {
    assert_eq!(
        load_ok(&format!("{CHECK}every = \"1m\"\n"))
            .global
            .max_component_size,
        64 << 20
    );
    let c = load_ok(&format!(
        "[global]\nmax_component_size = \"1MiB\"\n{CHECK}every = \"1m\"\n"
    ));
    assert_eq!(c.global.max_component_size, 1 << 20);
    for (value, needle) in [
        ("\"1KiB\"", "between 64KiB and 4GiB"),
        ("\"5GiB\"", "between 64KiB and 4GiB"),
        ("\"lots\"", "invalid size"),
        ("64", "expected a string with a unit"),
    ] {
        one_error(
            &format!("[global]\nmax_component_size = {value}\n{CHECK}every = \"1m\"\n"),
            2,
            "max_component_size",
            needle,
        );
    }
}

#[test]
fn component_keys_are_placed_at_their_line() {
    let text = format!(
        "{CHECK}every = \"1m\"\n\n[[check]]\nname = \"db\"\n  component = \"tcp.wasm\"\nevery = \"1m\"\n"
    );
    let config = load_ok(&text);
    let keys: Vec<String> = config
        .component_keys
        .iter()
        .map(|(r, d)| format!("{r:?} {d}"))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys[0].ends_with("conf/vantage.toml:3:13: check \"api\": key `component`: "),
        "{keys:?}"
    );
    assert!(
        keys[1].ends_with("conf/vantage.toml:8:15: check \"db\": key `component`: "),
        "{keys:?}"
    );
    assert!(keys[1].contains("conf/tcp.wasm"), "{keys:?}");
}
