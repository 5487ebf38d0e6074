//! One volatile namespace per source namespace: the names, and the mapping
//! every part of a run (namespaces, NetworkPolicies, the Restore's
//! `namespaceMapping`, readiness, checks, jobs, cleanup, the janitor, the
//! report) reads.
//!
//! Restoring several source namespaces into one would merge them: objects
//! of the same name in two namespaces (a `config` ConfigMap, a `db`
//! Service) overwrite or skip each other, and RoleBindings naming a
//! ServiceAccount of another source namespace point at the wrong copy.
//! Velero maps each source namespace on its own: every item of a source
//! namespace goes to `namespaceMapping[source]`
//! (`restoreContext.getSelectedRestoreableItems`, pkg/restore/restore.go,
//! sets each item's `targetNamespace` from the map; `processSelectedResource`
//! ensures that target namespace exists), PersistentVolumes follow their
//! claim's source namespace (`remapClaimRefNS`), and RoleBinding subjects
//! in a mapped namespace are remapped (`RoleBindingAction.Execute`,
//! pkg/restore/actions/rolebinding_action.go). So each source gets its own
//! volatile namespace here.
//!
//! A name is `{prefix}{source}-{suffix}`, the suffix being the run's
//! ([`run_suffix`]): a valid DNS label of at most 63 characters. When that
//! does not fit, the source is cut and 4 hex digits of its SHA-256 keep
//! the cut names apart (`{prefix}{cut source}-{hash}-{suffix}`); any
//! remaining clash within the run gets another hash. Names are a function
//! of (prefix, ordered sources, run id) only, so the janitor can recompute
//! them from a Restore ([`is_run_target`]).

pub use crate::result::restore::{NamespaceMapping, volatile_of};
use sha2::{Digest, Sha256};

use super::namespace::run_suffix;

/// Label on each volatile namespace: the source namespace it is a copy of.
pub const SOURCE_NAMESPACE_LABEL: &str = "vantage.dev/source-namespace";
/// Annotation on the Restore: the `namespace_prefix` its targets were
/// named with (the janitor recomputes them, see [`is_run_target`]).
pub const PREFIX_ANNOTATION: &str = "vantage.dev/namespace-prefix";

/// Longest namespace name (a DNS label).
const MAX_NAME: usize = 63;
/// Hex digits of the source's hash in a cut name.
const HASH_LEN: usize = 4;

/// The volatile namespace of each source namespace, in the order given
/// (duplicates once): see the module docs for the names.
pub fn volatile_namespaces(
    prefix: &str,
    sources: &[String],
    run_id: &str,
) -> Vec<NamespaceMapping> {
    let suffix = run_suffix(run_id);
    let budget = MAX_NAME - suffix.len() - 1;
    let mut out: Vec<NamespaceMapping> = Vec::new();
    for source in sources {
        if out.iter().any(|m| &m.source == source) {
            continue;
        }
        let head = dns_chars(&format!("{prefix}{source}"));
        let mut name = if head.len() <= budget {
            join(&head, &suffix)
        } else {
            cut(&head, budget, &hash(source), &suffix)
        };
        let mut n = 0u32;
        while out.iter().any(|m| m.volatile == name) {
            n += 1;
            name = cut(&head, budget, &hash(&format!("{source}#{n}")), &suffix);
        }
        out.push(NamespaceMapping::new(source.clone(), name));
    }
    out
}

/// Whether the janitor may treat `target` as one of the volatile
/// namespaces a run named: it is what [`volatile_namespaces`] gives for
/// `source` with the Restore's `prefix` annotation, its included
/// `sources` and its `run_id` label, and carries that prefix.
pub fn is_run_target(
    prefix: &str,
    sources: &[String],
    run_id: &str,
    source: &str,
    target: &str,
) -> bool {
    !prefix.is_empty()
        && target.starts_with(prefix)
        && volatile_of(&volatile_namespaces(prefix, sources, run_id), source) == Some(target)
}

/// `text` lowercased, every character outside `[a-z0-9-]` made `-`.
fn dns_chars(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect()
}

/// `{head}-{suffix}`, `head` without leading or trailing `-`.
fn join(head: &str, suffix: &str) -> String {
    let head = head.trim_matches('-');
    if head.is_empty() {
        format!("vantage-{suffix}")
    } else {
        format!("{head}-{suffix}")
    }
}

/// `{head cut to fit}-{hash}-{suffix}`.
fn cut(head: &str, budget: usize, hash: &str, suffix: &str) -> String {
    let room = budget.saturating_sub(hash.len() + 1);
    let head: String = head.chars().take(room).collect();
    let head = head.trim_matches('-');
    if head.is_empty() {
        format!("{hash}-{suffix}")
    } else {
        format!("{head}-{hash}-{suffix}")
    }
}

/// The first [`HASH_LEN`] hex digits of SHA-256(`text`).
fn hash(text: &str) -> String {
    let mut h = hex::encode(Sha256::digest(text.as_bytes()));
    h.truncate(HASH_LEN);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::tests::fixture::is_dns_label;

    fn sources(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn multins_each_source_gets_its_own_readable_name_with_the_run_suffix() {
        let m = volatile_namespaces("vantage-restore-", &sources(&["shop", "shop-data"]), "r1");
        let suffix = run_suffix("r1");
        assert_eq!(
            m,
            [
                NamespaceMapping::new("shop", format!("vantage-restore-shop-{suffix}")),
                NamespaceMapping::new("shop-data", format!("vantage-restore-shop-data-{suffix}")),
            ]
        );
        // Deterministic, and another run gets other names.
        assert_eq!(
            m,
            volatile_namespaces("vantage-restore-", &sources(&["shop", "shop-data"]), "r1")
        );
        let other = volatile_namespaces("vantage-restore-", &sources(&["shop", "shop-data"]), "r2");
        assert!(
            m.iter()
                .all(|a| other.iter().all(|b| a.volatile != b.volatile))
        );
        assert_eq!(volatile_of(&m, "shop-data"), Some(m[1].volatile.as_str()));
        assert_eq!(volatile_of(&m, "billing"), None);
        // The first source's name is the one a single-source run had.
        assert_eq!(
            m[0].volatile,
            super::super::namespace::volatile_name("vantage-restore-", "shop", "r1")
        );
    }

    #[test]
    fn multins_long_sources_are_cut_and_stay_apart() {
        let long = "a".repeat(60);
        let list = sources(&[
            &format!("{long}-one"),
            &format!("{long}-two"),
            &long,
            "shop",
            "shop",
        ]);
        let m = volatile_namespaces("vantage-restore-", &list, "run-7");
        assert_eq!(m.len(), 4, "the duplicate is mapped once: {m:?}");
        for x in &m {
            assert!(is_dns_label(&x.volatile), "{x:?}");
            assert!(x.volatile.starts_with("vantage-restore-"), "{x:?}");
            assert!(x.volatile.ends_with(&run_suffix("run-7")), "{x:?}");
        }
        let mut names: Vec<&str> = m.iter().map(|x| x.volatile.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 4, "{m:?}");
        // A prefix leaving no room for the source still yields distinct names.
        let m = volatile_namespaces(&"p".repeat(60), &sources(&["a", "b", "c"]), "x");
        let mut names: Vec<&str> = m.iter().map(|x| x.volatile.as_str()).collect();
        assert!(names.iter().all(|n| is_dns_label(n)), "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn multins_run_targets_are_only_the_names_the_run_computes() {
        let list = sources(&["shop", "shop-data"]);
        let m = volatile_namespaces("vantage-restore-", &list, "r1");
        for x in &m {
            assert!(is_run_target(
                "vantage-restore-",
                &list,
                "r1",
                &x.source,
                &x.volatile
            ));
        }
        // Someone else's mapping into production, or another run's names.
        assert!(!is_run_target(
            "vantage-restore-",
            &list,
            "r1",
            "shop",
            "shop"
        ));
        assert!(!is_run_target(
            "vantage-restore-",
            &list,
            "r2",
            "shop",
            &m[0].volatile
        ));
        assert!(!is_run_target(
            "vantage-restore-",
            &list,
            "r1",
            "shop",
            &m[1].volatile
        ));
        assert!(!is_run_target("", &list, "r1", "shop", &m[0].volatile));
    }
}
