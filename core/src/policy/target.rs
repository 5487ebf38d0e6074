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
/// port.
pub fn target_origin(target: &str) -> Result<String, String> {
    let not_a_url = |why: &str| {
        let t = target.trim();
        let looks_like_host_port = t
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && !h.contains("//") && p.parse::<u16>().is_ok());
        let fix = if looks_like_host_port {
            format!("tcp://{t}")
        } else {
            format!("https://{}", t.split("://").last().unwrap_or(t))
        };
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
        let e = target_origin("db.internal:5432").unwrap_err();
        assert!(
            e.contains("write it as a URL, e.g. tcp://db.internal:5432"),
            "{e}"
        );
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
        let e = AllowList::expand(["{target}"], &["db:5432"], None).unwrap_err();
        assert!(e.contains("(for target \"db:5432\")"), "{e}");
        assert!(e.contains("tcp://db:5432"), "{e}");
        assert!(
            AllowList::expand(["{target}"], &[] as &[&str], None)
                .unwrap()
                .is_empty()
        );
    }
}
