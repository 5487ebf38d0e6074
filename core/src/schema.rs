//! What a check says about its configuration (the `config-key` records of
//! its `describe`, WIT 0.2.0): each key's type, default and whether it may
//! hold a secret. Plain data; the runtime fills it from the component.

use serde::Serialize;

/// The type of a configuration value (WIT `value-type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "of")]
pub enum ValueType {
    /// Any text.
    Text,
    /// A whole number within the inclusive bounds, when given.
    Integer(Option<i64>, Option<i64>),
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A duration such as `1500ms`, `10s`, `1h30m`.
    Duration,
    /// A regular expression.
    Regex,
    /// An absolute `http://` or `https://` URL.
    Url,
    /// `host:port`.
    HostPort,
    /// An HTTP status code, class (`2xx`) or range (`200-299`).
    StatusRange,
    /// PEM text.
    Pem,
    /// A size in bytes: `512`, `64KiB`, `1MiB`.
    Size,
    /// One of these words.
    Choice(Vec<String>),
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueType::Text => f.write_str("text"),
            ValueType::Integer(None, None) => f.write_str("integer"),
            ValueType::Integer(lo, hi) => {
                let bound = |b: &Option<i64>| b.map(|v| v.to_string()).unwrap_or_default();
                write!(f, "integer {}..{}", bound(lo), bound(hi))
            }
            ValueType::Number => f.write_str("number"),
            ValueType::Boolean => f.write_str("boolean"),
            ValueType::Duration => f.write_str("duration"),
            ValueType::Regex => f.write_str("regex"),
            ValueType::Url => f.write_str("url"),
            ValueType::HostPort => f.write_str("host:port"),
            ValueType::StatusRange => f.write_str("status range"),
            ValueType::Pem => f.write_str("PEM"),
            ValueType::Size => f.write_str("size"),
            ValueType::Choice(words) => write!(f, "one of {}", words.join(", ")),
        }
    }
}

/// One configuration key a check understands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigKey {
    /// Dotted key; a part written `<name>` stands for any operator-chosen
    /// name (`headers.<name>`).
    pub key: String,
    /// What it does.
    pub description: String,
    /// The type of its value (of each item, when `repeated`).
    pub value_type: ValueType,
    /// Whether it takes a list (`key.0`, `key.1`, … reach the check).
    pub repeated: bool,
    /// Default value, if any.
    pub default: Option<String>,
    /// Whether the check needs it.
    pub required: bool,
    /// Whether its value may be a secret: never shown in errors or output.
    pub sensitive: bool,
}

/// One problem with a check's configuration against its declared keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// The flattened key as configured (`expect.status.0`), or the declared
    /// key for a missing required one.
    pub key: String,
    /// What is wrong. Never contains a value that may be a secret: a
    /// sensitive key's value and an unknown key's value are never shown.
    pub message: String,
}

/// Whether the configured (flattened) `key` is the declared `declared`:
/// equal, an item of it (`declared.N`), or under a `<name>` part
/// (`headers.<name>` covers `headers.Accept`). The SDK matches the same way.
pub fn key_matches(declared: &str, key: &str) -> bool {
    if let Some(open) = declared.find('<') {
        let prefix = &declared[..open];
        return key.len() > prefix.len() && key.starts_with(prefix);
    }
    key == declared
        || key
            .strip_prefix(declared)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Check a configuration (flattened to dotted keys) against the keys a
/// check declares: unknown keys, missing required keys, and every value
/// against its key's type. Values holding a `{{…}}` reference (a secret,
/// a restore template) are resolved later and are not type-checked.
///
/// A check that declares no key at all takes its configuration as is (the
/// SDK's rule, see `vantage_sdk::Check::run`): there is nothing to check it
/// against.
pub fn check_values(keys: &[ConfigKey], config: &[(String, String)]) -> Vec<ValueProblem> {
    let mut problems = Vec::new();
    if keys.is_empty() {
        return problems;
    }
    for (key, value) in config {
        let Some(declared) = keys.iter().find(|k| key_matches(&k.key, key)) else {
            let known: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
            problems.push(ValueProblem {
                key: key.clone(),
                message: format!("unknown key; this check understands {}", known.join(", ")),
            });
            continue;
        };
        if value.contains("{{") {
            continue;
        }
        if let Err(why) = check_value(&declared.value_type, value) {
            let message = if declared.sensitive {
                format!("the value is not a valid {} ({why})", declared.value_type)
            } else {
                format!("{value:?} is not a valid {}: {why}", declared.value_type)
            };
            problems.push(ValueProblem {
                key: key.clone(),
                message,
            });
        }
    }
    for k in keys.iter().filter(|k| k.required && k.default.is_none()) {
        if !config.iter().any(|(key, _)| key_matches(&k.key, key)) {
            problems.push(ValueProblem {
                key: k.key.clone(),
                message: format!("missing: this check needs it ({})", k.description),
            });
        }
    }
    problems
}

/// Whether `value` is a valid `t`; the reason when it is not.
pub fn check_value(t: &ValueType, value: &str) -> Result<(), String> {
    let v = value.trim();
    match t {
        ValueType::Text => Ok(()),
        ValueType::Integer(lo, hi) => {
            let n: i64 = v.parse().map_err(|_| "not a whole number".to_string())?;
            match (lo, hi) {
                (Some(lo), _) if n < *lo => Err(format!("less than {lo}")),
                (_, Some(hi)) if n > *hi => Err(format!("more than {hi}")),
                _ => Ok(()),
            }
        }
        ValueType::Number => v
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|_| ())
            .ok_or_else(|| "not a number".to_string()),
        ValueType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" => Ok(()),
            _ => Err("write true or false".into()),
        },
        ValueType::Duration => {
            if v == "0" || duration_parts(v) || humantime::parse_duration(v).is_ok() {
                Ok(())
            } else {
                Err("write a duration such as 500ms, 10s, 1.5s or 1m30s".into())
            }
        }
        ValueType::Size => size(v),
        ValueType::Regex => regex::Regex::new(value).map(|_| ()).map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string()
        }),
        ValueType::Url => match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            Ok(_) => Err("write an absolute http:// or https:// URL".into()),
            Err(e) => Err(e.to_string()),
        },
        ValueType::HostPort => host_port(v),
        ValueType::StatusRange => status_range(v),
        ValueType::Pem => {
            if v.contains("-----BEGIN ") && v.contains("-----END ") {
                Ok(())
            } else {
                Err("no PEM block (-----BEGIN …-----)".into())
            }
        }
        ValueType::Choice(words) => {
            if words.iter().any(|w| w.eq_ignore_ascii_case(v)) {
                Ok(())
            } else {
                Err(format!("write one of {}", words.join(", ")))
            }
        }
    }
}

fn host_port(v: &str) -> Result<(), String> {
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| "write host:port, e.g. db.internal:5432".to_string())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("no host before the port".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("port {port:?} is not 1-65535")),
    }
}

/// Whether `v` is numbers with units (`1.5s`, `1m30s`, `250 ms`), as the
/// SDK reads durations: the host accepts what a check accepts.
fn duration_parts(v: &str) -> bool {
    let mut rest = v.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 || rest[..n].parse::<f64>().is_err() {
            return false;
        }
        rest = rest[n..].trim_start();
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..u],
            "ns" | "us" | "µs" | "ms" | "s" | "m" | "h" | "d"
        ) {
            return false;
        }
        rest = rest[u..].trim_start();
    }
    true
}

/// A size in bytes: `512`, `64KiB`, `1 MiB`, `2MB`.
fn size(v: &str) -> Result<(), String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if split == 0 {
        return Err("write a size such as 512, 64KiB or 1MiB".into());
    }
    match v[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" | "kb" | "kib" | "mb" | "mib" | "gb" | "gib" => Ok(()),
        _ => Err("unknown unit: write B, KB, KiB, MB, MiB, GB or GiB".into()),
    }
}

/// `204`, `2xx`, `200-299`, or several of them separated by commas
/// (`2xx, 304`).
fn status_range(v: &str) -> Result<(), String> {
    if v.contains(',') {
        return v.split(',').map(str::trim).try_for_each(status_range);
    }
    let code = |s: &str| match s.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(format!("{s:?} is not a status code (100-599)")),
    };
    if let Some(class) = v.strip_suffix("xx").or_else(|| v.strip_suffix("XX")) {
        return match class {
            "1" | "2" | "3" | "4" | "5" => Ok(()),
            _ => Err("a class is 1xx to 5xx".into()),
        };
    }
    if let Some((lo, hi)) = v.split_once('-') {
        let (lo, hi) = (code(lo.trim())?, code(hi.trim())?);
        return if lo <= hi {
            Ok(())
        } else {
            Err(format!("{lo} is after {hi}"))
        };
    }
    code(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, t: ValueType) -> ConfigKey {
        ConfigKey {
            key: k.into(),
            description: "d".into(),
            value_type: t,
            repeated: false,
            default: None,
            required: false,
            sensitive: false,
        }
    }

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_values_are_checked() {
        let keys = [
            key("expect.status", ValueType::StatusRange),
            key("timeout", ValueType::Duration),
            key("expect.body_matches", ValueType::Regex),
            key("headers.<name>", ValueType::Text),
            key("retries", ValueType::Integer(Some(0), Some(5))),
            key(
                "method",
                ValueType::Choice(vec!["GET".into(), "HEAD".into()]),
            ),
        ];
        let good = cfg(&[
            ("expect.status.0", "2xx"),
            ("expect.status.1", "304"),
            ("timeout", "1500ms"),
            ("expect.body_matches", "ok|up"),
            ("headers.Accept", "x"),
            ("retries", "3"),
            ("method", "head"),
        ]);
        assert_eq!(check_values(&keys, &good), []);
        let bad = cfg(&[
            ("expect.status.0", "2x9"),
            ("timeout", "soon"),
            ("expect.body_matches", "(unclosed"),
            ("retries", "9"),
            ("method", "PUT"),
            ("expect.status", "600-700"),
        ]);
        let problems = check_values(&keys, &bad);
        let keys_hit: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys_hit,
            [
                "expect.status.0",
                "timeout",
                "expect.body_matches",
                "retries",
                "method",
                "expect.status"
            ]
        );
        assert!(problems[2].message.contains("regex"), "{problems:?}");
        assert!(problems[3].message.contains("more than 5"), "{problems:?}");
    }

    #[test]
    fn the_host_accepts_what_the_sdk_accepts() {
        for (t, ok, bad) in [
            (
                ValueType::Duration,
                &["0", "1.5s", "1m30s", "250 ms", "2h"][..],
                &["90", "soon", "1x"][..],
            ),
            (ValueType::Boolean, &["true", "No", "on", "0"], &["maybe"]),
            (
                ValueType::StatusRange,
                &["2xx", "200-299", "2xx, 304", "204"],
                &["2x9", "600", "2xx,"],
            ),
            (
                ValueType::Size,
                &["512", "64KiB", "1 MiB", "2MB"],
                &["MiB", "1 TiB", "-1"],
            ),
        ] {
            for v in ok {
                assert_eq!(check_value(&t, v), Ok(()), "{t} {v}");
            }
            for v in bad {
                assert!(check_value(&t, v).is_err(), "{t} {v}");
            }
        }
    }

    #[test]
    fn unknown_and_sensitive_values_are_never_shown() {
        let mut token = key("bearer_token", ValueType::Pem);
        token.sensitive = true;
        let problems = check_values(
            &[token],
            &cfg(&[("bearer_tokn", "mysecret"), ("bearer_token", "mysecret2")]),
        );
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.starts_with("unknown key"));
        for p in &problems {
            assert!(!p.message.contains("mysecret"), "{p:?}");
        }
    }

    #[test]
    fn required_keys_and_references() {
        let mut user = key("login.username", ValueType::Text);
        user.required = true;
        let t = key("timeout", ValueType::Duration);
        let problems = check_values(&[user, t], &cfg(&[("timeout", "{{secret.t}}")]));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "login.username");
        assert!(problems[0].message.starts_with("missing"));
    }

    #[test]
    fn a_check_that_declares_no_key_takes_any_configuration() {
        let config = cfg(&[("behaviour", "log-flood"), ("urls.0", "http://x/")]);
        assert_eq!(check_values(&[], &config), []);
        // One declared key is enough for the others to be unknown.
        let problems = check_values(&[key("behaviour", ValueType::Text)], &config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "urls.0");
    }
}
