//! `{target}` in an allow list: the one expansion of a check's targets into
//! the patterns that let it reach them, used by the configuration, the
//! restore tests and `vantage run` alike.

use super::list::AllowList;
use super::pattern::{AllowPattern, Scheme};

/// The placeholder that, in a check's `allow` list, stands for each
/// target's `scheme://host:port`.
pub const TARGET_PLACEHOLDER: &str = "{target}";

/// The allow pattern a target URL needs: its `scheme://host:port`
/// (`https://api.example.com/healthz` → `https://api.example.com:443`).
/// Used to expand [`TARGET_PLACEHOLDER`]. The scheme must be one the
/// policy knows (http, https, tcp, tls, dns); `tcp` targets must name a
/// port. A bare `host:port` (what the `tcp` check takes) is a `tcp://`
/// target: the configuration, restore tests and `vantage run` read it alike.
pub fn target_origin(target: &str) -> Result<String, String> {
    if let Some(tcp) = bare_host_port(target.trim()) {
        return target_origin(&tcp);
    }
    let not_a_url = |why: &str| {
        let t = target.trim();
        let fix = format!("https://{}", t.split("://").last().unwrap_or(t));
        format!(
            "target {target:?} {why}, so `{{target}}` cannot stand for it; write it as a URL, e.g. {fix}"
        )
    };
    let url = url::Url::parse(target.trim()).map_err(|_| not_a_url("is not a URL"))?;
    let Some(scheme) = Scheme::parse(url.scheme()) else {
        return Err(not_a_url(
            "is not a URL with scheme http, https, tcp, tls or dns",
        ));
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        _ => return Err(not_a_url("has no host")),
    };
    let port = url
        .port()
        .or_else(|| scheme.default_port())
        .ok_or_else(|| {
            format!(
                "target {target:?} has no port, so `{{target}}` cannot stand for it; \
                 write {scheme}://{host}:PORT, e.g. {scheme}://{host}:5432"
            )
        })?;
    Ok(format!("{scheme}://{host}:{port}"))
}

/// `tcp://host:port` for a bare `host:port` (`db.internal:5432`,
/// `127.0.0.1:5432`, `[::1]:5432`); `None` for anything with a scheme or
/// without a port.
fn bare_host_port(t: &str) -> Option<String> {
    if t.contains("://") || t.contains('/') {
        return None;
    }
    let (host, port) = t.rsplit_once(':')?;
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || !host.contains(':') && !host.contains(char::is_whitespace));
    (host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| format!("tcp://{t}"))
}

/// One allow-list entry as written, expanded: a pattern stands for itself;
/// [`TARGET_PLACEHOLDER`] stands for each target's [`target_origin`] (an
/// empty target expands to nothing). Each item says which target it came
/// from (for `{target}`) and holds the pattern, or why there is none.
pub fn expand_entry<'t, T: AsRef<str>>(
    entry: &str,
    targets: &'t [T],
) -> Vec<(Option<&'t str>, Result<AllowPattern, String>)> {
    if entry.trim() != TARGET_PLACEHOLDER {
        return vec![(
            None,
            entry.parse::<AllowPattern>().map_err(|e| e.to_string()),
        )];
    }
    targets
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let pattern =
                target_origin(t).and_then(|o| o.parse::<AllowPattern>().map_err(|e| e.to_string()));
            (Some(t), pattern)
        })
        .collect()
}

impl AllowList {
    /// The allow list of a run: each entry [expanded](expand_entry) for
    /// `targets`, each pattern held to `ceiling` (when given), duplicates
    /// dropped. The first problem is the error, naming the entry (and the
    /// target `{target}` stood for).
    pub fn expand<'e, T: AsRef<str>>(
        entries: impl IntoIterator<Item = &'e str>,
        targets: &[T],
        ceiling: Option<&AllowList>,
    ) -> Result<AllowList, String> {
        let mut patterns: Vec<AllowPattern> = Vec::new();
        for entry in entries {
            for (target, pattern) in expand_entry(entry, targets) {
                let from = match target {
                    Some(t) => format!("allow entry {entry:?} (for target {t:?})"),
                    None => format!("allow entry {entry:?}"),
                };
                let pattern = pattern.map_err(|e| format!("{from}: {e}"))?;
                if let Some(Err(e)) = ceiling.map(|c| c.covers(&pattern)) {
                    return Err(format!("{from}: {e}"));
                }
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
            }
        }
        Ok(AllowList::from(patterns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_targets_are_tcp() {
        assert_eq!(
            target_origin("db.internal:5432").unwrap(),
            "tcp://db.internal:5432"
        );
        assert_eq!(target_origin("127.0.0.1:25").unwrap(), "tcp://127.0.0.1:25");
        assert_eq!(target_origin("[::1]:993").unwrap(), "tcp://[::1]:993");
        assert!(target_origin("db.internal").is_err());
        assert!(target_origin("db.internal:99999").is_err());
        let list = AllowList::expand([TARGET_PLACEHOLDER], &["db.internal:5432"], None).unwrap();
        assert!(list.check_target("tcp", "db.internal", 5432).is_ok());
        assert!(list.check_target("tcp", "db.internal", 5433).is_err());
    }

    #[test]
    fn target_origins() {
        assert_eq!(
            target_origin("https://api.example.com/healthz").unwrap(),
            "https://api.example.com:443"
        );
        assert_eq!(
            target_origin("http://API.example.com:8080/x?y").unwrap(),
            "http://api.example.com:8080"
        );
        assert_eq!(
            target_origin("https://user:pw@x.com/").unwrap(),
            "https://x.com:443"
        );
        assert_eq!(
            target_origin("http://[::1]:8080/").unwrap(),
            "http://[::1]:8080"
        );
        assert_eq!(
            target_origin("http://127.0.0.1/").unwrap(),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            target_origin("tcp://db.internal:5432").unwrap(),
            "tcp://db.internal:5432"
        );
        assert_eq!(
            target_origin("tls://mail.example.com").unwrap(),
            "tls://mail.example.com:443"
        );
        assert_eq!(target_origin("dns://9.9.9.9").unwrap(), "dns://9.9.9.9:53");
        let e = target_origin("api.example.com").unwrap_err();
        assert!(e.contains("is not a URL"), "{e}");
        assert!(e.contains("e.g. https://api.example.com"), "{e}");
        let e = target_origin("ftp://files.example.com").unwrap_err();
        assert!(e.contains("scheme http, https, tcp, tls or dns"), "{e}");
        let e = target_origin("tcp://db.internal").unwrap_err();
        assert!(e.contains("has no port"), "{e}");
        assert!(e.contains("tcp://db.internal:5432"), "{e}");
    }

    #[test]
    fn expand_replaces_target_keeps_patterns_and_holds_the_ceiling() {
        let targets = [
            "https://api.example.com/healthz",
            "",
            "https://api.example.com/x",
        ];
        let list = AllowList::expand(["{target}", "tcp://db:5432"], &targets, None).unwrap();
        assert_eq!(list.to_string(), "[https://api.example.com, tcp://db:5432]");
        let ceiling = AllowList::parse(["https://*.example.com"]).unwrap();
        let e =
            AllowList::expand(["{target}", "tcp://db:5432"], &targets, Some(&ceiling)).unwrap_err();
        assert!(e.starts_with("allow entry \"tcp://db:5432\": "), "{e}");
        let e = AllowList::expand(["{target}"], &["db"], None).unwrap_err();
        assert!(e.contains("(for target \"db\")"), "{e}");
        assert!(e.contains("https://db"), "{e}");
        assert!(
            AllowList::expand(["{target}"], &[] as &[&str], None)
                .unwrap()
                .is_empty()
        );
    }
}
