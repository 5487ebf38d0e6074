//! From custom resources to configuration: each `Check` becomes the
//! `[[check]]` table it stands for, each `RestoreTest` its `[[restore]]`,
//! and [`compose`] validates them with the configuration's own validator,
//! beside `vantage.toml`, one resource at a time, so that a resource that
//! fails gets its own error and the others run.
//!
//! Secrets (`secretKeyRef`) are read by the caller and passed in as
//! [`HeldSecret`]s: the table names each by a placeholder
//! (`env:VANTAGE_K8S_…`) that [`compose`] replaces with the held value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::crd::{CheckSpec, KeyRef, RestoreTestSpec};
use crate::config::{self, Config, ConfigError, HeldSecret, SecretSource, Severity};

/// The kind of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `Check`.
    Check,
    /// A `RestoreTest`.
    RestoreTest,
}

impl Kind {
    /// The resource's plural, as in `kubectl get checks`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Check => "checks",
            Kind::RestoreTest => "restoretests",
        }
    }
}

/// Which resource, at which generation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name (the check's name).
    pub name: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Check => "Check",
            Kind::RestoreTest => "RestoreTest",
        };
        write!(f, "{kind} {}/{}", self.namespace, self.name)
    }
}

/// One resource as a configuration table, or why it cannot be one.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// The resource.
    pub id: ResourceId,
    /// The TOML table (`[[check]]` or `[[restore]]`), or what is wrong with
    /// the resource before validation (a missing Secret, a null in
    /// `config`).
    pub toml: Result<String, String>,
    /// The secrets the table's placeholders stand for.
    pub secrets: BTreeMap<String, HeldSecret>,
}

/// What [`compose`] made of the resources: the configuration to run, and
/// each resource's verdict (`Err` with the error for people).
pub struct Composed {
    /// `vantage.toml` plus every accepted resource.
    pub config: Config,
    /// One verdict per resource, in the order given.
    pub verdicts: Vec<(ResourceId, Result<(), String>)>,
}

/// The placeholder standing for the secret `reference` of `namespace`.
pub fn placeholder(namespace: &str, reference: &KeyRef) -> String {
    let digest = Sha256::digest(format!("{namespace}/{}/{}", reference.name, reference.key));
    format!("VANTAGE_K8S_{}", hex::encode_upper(&digest[..10]))
}

/// The `[[check]]` table of `spec`, named `name`. `component` replaces
/// `componentFrom` (the file its ConfigMap's bytes were written to);
/// `secret` gives the placeholder of each `secretKeyRef`.
pub fn check_table(
    name: &str,
    spec: &CheckSpec,
    component: Option<&Path>,
    secret: &dyn Fn(&KeyRef) -> String,
) -> Result<toml::Table, String> {
    let mut table = fields(spec, &["componentFrom", "secrets"], "spec")?;
    table.insert("name".into(), name.into());
    if let Some(path) = component {
        if spec.component.is_some() {
            return Err("spec: give one of component and componentFrom, not both".into());
        }
        table.insert("component".into(), path.display().to_string().into());
    }
    if !spec.secrets.is_empty() {
        let secrets: toml::Table = spec
            .secrets
            .iter()
            .map(|(name, r)| {
                let source = format!("env:{}", secret(&r.secret_key_ref));
                (name.clone(), toml::Value::from(source))
            })
            .collect();
        table.insert("secrets".into(), secrets.into());
    }
    Ok(table)
}

/// The `[[restore]]` table of `spec`, named `name`; `components` gives the
/// file of each check's `componentFrom`, by check name.
pub fn restore_table(
    name: &str,
    spec: &RestoreTestSpec,
    components: &BTreeMap<String, PathBuf>,
    secret: &dyn Fn(&KeyRef) -> String,
) -> Result<toml::Table, String> {
    let mut table = fields(spec, &["checks", "jobs"], "spec")?;
    table.insert("name".into(), name.into());
    if !spec.checks.is_empty() {
        let checks = spec
            .checks
            .iter()
            .map(|c| {
                let path = components.get(&c.name).map(PathBuf::as_path);
                check_table(&c.name, &c.check, path, secret).map(toml::Value::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        table.insert("check".into(), checks.into());
    }
    if !spec.jobs.is_empty() {
        let jobs = spec
            .jobs
            .iter()
            .map(|job| fields(job, &[], "spec.jobs").map(toml::Value::from))
            .collect::<Result<Vec<_>, String>>()?;
        table.insert("job".into(), jobs.into());
    }
    Ok(table)
}

/// The fields of `spec` (camelCase) as a table's keys (snake_case), but
/// those in `skip`; values as they are (a `config` keeps its keys). `at`
/// names the place in errors.
fn fields(spec: &impl serde::Serialize, skip: &[&str], at: &str) -> Result<toml::Table, String> {
    let json = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let mut table = toml::Table::new();
    for (key, value) in json.as_object().into_iter().flatten() {
        if !skip.contains(&key.as_str()) {
            table.insert(snake(key), to_toml(value, &format!("{at}.{key}"))?);
        }
    }
    Ok(table)
}

/// `table` as the TOML text of one `[[section]]`.
pub fn as_toml(section: &str, table: toml::Table) -> String {
    let mut doc = toml::Table::new();
    doc.insert(section.into(), toml::Value::Array(vec![table.into()]));
    toml::to_string(&doc).expect("a table serialises")
}

/// `camelCase` → `snake_case`.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `snake_case` → `camelCase` (for naming a key of the resource).
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON → TOML; TOML has no null.
fn to_toml(value: &Json, at: &str) -> Result<toml::Value, String> {
    Ok(match value {
        Json::Null => return Err(format!("{at}: null is not allowed (leave the key out)")),
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) => toml::Value::Float(f),
            _ => return Err(format!("{at}: {n} is out of range")),
        },
        Json::String(s) => toml::Value::String(s.clone()),
        Json::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_toml(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => toml::Value::Table(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_toml(v, &format!("{at}.{k}"))?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Validate `fragments` beside the configuration file `base` (its text,
/// read from `path`): each alone, then the accepted ones together. A
/// resource whose name a file entry or an earlier resource already has is
/// refused. Errors in the file itself are the file's (the caller keeps the
/// running configuration).
pub fn compose(base: &str, path: &Path, fragments: &[Fragment]) -> Result<Composed, ConfigError> {
    let alone = config::from_str(base, path)?;
    let mut taken: BTreeMap<String, String> = alone
        .checks
        .iter()
        .map(|c| c.name.clone())
        .chain(alone.restores.iter().map(|r| r.name.clone()))
        .map(|n| (n, format!("{}", path.display())))
        .collect();
    // The line a resource's table starts on in `{base}\n{table}`.
    let first_line = format!("{base}\n").lines().count() + 1;
    let mut text = format!("{base}\n");
    let mut verdicts = Vec::new();
    let mut held: BTreeMap<String, HeldSecret> = BTreeMap::new();
    for fragment in fragments {
        let verdict = (|| {
            let toml = fragment.toml.as_ref().map_err(Clone::clone)?;
            if let Some(owner) = taken.get(&fragment.id.name) {
                return Err(format!(
                    "a check or restore test named {:?} already exists (in {owner}); names are unique across namespaces and vantage.toml",
                    fragment.id.name
                ));
            }
            let candidate = format!("{base}\n{toml}");
            match config::from_str(&candidate, path) {
                Ok(_) => Ok(()),
                Err(e) => {
                    let mine: Vec<String> = e
                        .diagnostics()
                        .iter()
                        .filter(|d| d.severity == Severity::Error && d.line >= first_line)
                        .map(|d| {
                            let key = d.key.as_deref().map(camel);
                            match key {
                                Some(k) => format!("spec.{k}: {}", d.message),
                                None => d.message.clone(),
                            }
                        })
                        .collect();
                    Err(if mine.is_empty() {
                        e.to_string()
                    } else {
                        mine.join("; ")
                    })
                }
            }
        })();
        if verdict.is_ok() {
            taken.insert(fragment.id.name.clone(), fragment.id.to_string());
            if let Ok(toml) = &fragment.toml {
                text.push_str(toml);
                text.push('\n');
            }
            held.extend(fragment.secrets.clone());
        }
        verdicts.push((fragment.id.clone(), verdict));
    }
    let mut config = config::from_str(&text, path)?;
    let hold = |secrets: &mut Vec<(String, SecretSource)>| {
        for (_, source) in secrets.iter_mut() {
            if let SecretSource::Env(var) = source
                && let Some(value) = held.get(var.as_str())
            {
                *source = SecretSource::Held(value.clone());
            }
        }
    };
    for check in &mut config.checks {
        hold(&mut check.secrets);
    }
    #[cfg(feature = "restore")]
    for restore in &mut config.restores {
        for check in &mut restore.checks {
            hold(&mut check.secrets);
        }
    }
    Ok(Composed { config, verdicts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::crd::{RestoreCheck, SecretRef};

    fn no_secret(_: &KeyRef) -> String {
        unreachable!("no secrets here")
    }

    /// The resource's keys, camelCased, are the file's; what differs is
    /// listed here, with why.
    #[test]
    fn spec_keys_are_the_file_keys() {
        let schema_keys = |schema: schemars::Schema| -> Vec<String> {
            let json = serde_json::to_value(schema).unwrap();
            let mut keys: Vec<String> = json["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        let mut file: Vec<String> = config::keys::check()
            .iter()
            .filter(|k| {
                // name: metadata.name; mode: a Check is an edge check, a
                // RestoreTest's checks are restore checks.
                !matches!(**k, "name" | "mode")
            })
            .map(|k| camel(k))
            .chain(["componentFrom".to_string()]) // a ConfigMap's bytes
            .collect();
        file.sort();
        assert_eq!(schema_keys(schemars::schema_for!(CheckSpec)), file);

        let mut file: Vec<String> = config::keys::restore()
            .iter()
            .filter(|k| {
                // name: metadata.name; kubeconfig, context: the daemon's own
                // cluster.
                !matches!(**k, "name" | "kubeconfig" | "context")
            })
            .map(|k| match *k {
                "check" => "checks".to_string(),
                "job" => "jobs".to_string(),
                k => camel(k),
            })
            .collect();
        file.sort();
        assert_eq!(schema_keys(schemars::schema_for!(RestoreTestSpec)), file);

        let mut file: Vec<String> = config::keys::job().iter().map(|k| camel(k)).collect();
        file.sort();
        assert_eq!(
            schema_keys(schemars::schema_for!(crate::kubernetes::crd::RestoreJob)),
            file
        );
    }

    fn fragment(name: &str, spec: &CheckSpec) -> Fragment {
        let secret = |r: &KeyRef| placeholder("shop", r);
        Fragment {
            id: ResourceId {
                kind: Kind::Check,
                namespace: "shop".into(),
                name: name.into(),
                generation: Some(1),
            },
            toml: check_table(name, spec, None, &secret).map(|t| as_toml("check", t)),
            secrets: spec
                .secrets
                .values()
                .map(|r| {
                    let p = placeholder("shop", &r.secret_key_ref);
                    (
                        p,
                        HeldSecret::new("secretKeyRef shop/api/token", "s3cr3t-value"),
                    )
                })
                .collect(),
        }
    }

    fn spec(every: &str) -> CheckSpec {
        CheckSpec {
            component: Some("/abs/http.wasm".into()),
            every: Some(every.into()),
            targets: vec!["https://shop.example.com/".into()],
            allow: vec!["{target}".into()],
            failure_threshold: Some(2),
            ..CheckSpec::default()
        }
    }

    #[test]
    fn a_resource_becomes_the_check_a_file_entry_would_be() {
        let file = "[[check]]\nname = \"api\"\ncomponent = \"/abs/http.wasm\"\nevery = \"1m\"\n\
                    targets = [\"https://shop.example.com/\"]\nallow = [\"{target}\"]\nfailure_threshold = 2\n";
        let from_file = config::from_str(file, Path::new("/etc/vantage/vantage.toml")).unwrap();
        let composed = compose(
            "",
            Path::new("/etc/vantage/vantage.toml"),
            &[fragment("api", &spec("1m"))],
        )
        .unwrap();
        assert_eq!(composed.verdicts[0].1, Ok(()));
        assert_eq!(composed.config.checks, from_file.checks);
    }

    #[test]
    fn a_bad_resource_gets_its_error_and_the_others_run() {
        let base = "[defaults]\ntimeout = \"5s\"\n\n[[check]]\nname = \"from-file\"\ncomponent = \"/abs/a.wasm\"\nevery = \"1m\"\n";
        let mut with_secret = spec("30s");
        with_secret.secrets.insert(
            "token".into(),
            SecretRef {
                secret_key_ref: KeyRef {
                    name: "api".into(),
                    key: "token".into(),
                },
            },
        );
        let fragments = [
            fragment("good", &with_secret),
            fragment("bad", &spec("1x")),
            fragment("from-file", &spec("1m")),
            fragment("fine", &spec("2m")),
        ];
        let composed = compose(base, Path::new("/etc/vantage/vantage.toml"), &fragments).unwrap();
        let verdicts: Vec<_> = composed.verdicts.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(verdicts[0], Ok(()));
        let bad = verdicts[1].clone().unwrap_err();
        assert!(bad.starts_with("spec.every: "), "{bad}");
        assert!(bad.contains("1x"), "{bad}");
        assert!(!bad.contains("vantage.toml:"), "no file position: {bad}");
        let dup = verdicts[2].clone().unwrap_err();
        assert!(
            dup.contains("already exists (in /etc/vantage/vantage.toml)"),
            "{dup}"
        );
        assert_eq!(verdicts[3], Ok(()));
        let names: Vec<&str> = composed
            .config
            .checks
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["from-file", "good", "fine"]);
        // The secret is the held value, not the placeholder's variable.
        let good = &composed.config.checks[1];
        assert_eq!(good.secrets.len(), 1);
        assert_eq!(good.secrets[0].1.read().unwrap(), "s3cr3t-value");
        assert_eq!(good.secrets[0].1.to_string(), "secretKeyRef shop/api/token");
        assert!(!format!("{:?}", good.secrets).contains("s3cr3t"));
        // The file's own timeout default applies to the resources too.
        assert_eq!(good.limits.timeout, std::time::Duration::from_secs(5));
    }

    #[test]
    fn an_error_on_the_resource_s_first_line_is_the_resource_s_whatever_the_file_ends_with() {
        // Neither `every` nor `cron`: reported on the table's header line.
        let mut no_schedule = spec("1m");
        no_schedule.every = None;
        for base in [
            "[defaults]\ntimeout = \"5s\"",
            "[defaults]\ntimeout = \"5s\"\n",
            "",
        ] {
            let composed =
                compose(base, Path::new("/v.toml"), &[fragment("api", &no_schedule)]).unwrap();
            let verdict = composed.verdicts[0].1.clone().unwrap_err();
            assert!(!verdict.contains("/v.toml:"), "{base:?}: {verdict}");
            assert!(verdict.contains("every"), "{base:?}: {verdict}");
        }
    }

    #[test]
    fn nulls_and_both_component_sources_are_refused_before_validation() {
        let mut s = spec("1m");
        s.config = Some(serde_json::from_str(r#"{"path": null}"#).unwrap());
        let t = check_table("a", &s, None, &no_secret).unwrap_err();
        assert_eq!(
            t,
            "spec.config.path: null is not allowed (leave the key out)"
        );
        let t = check_table("a", &spec("1m"), Some(Path::new("/x.wasm")), &no_secret).unwrap_err();
        assert!(t.contains("not both"), "{t}");
    }

    #[test]
    fn a_restore_test_resource_becomes_its_restore_table() {
        let spec = RestoreTestSpec {
            schedule: Some("nightly".into()),
            namespaces: vec!["shop".into()],
            every: Some("24h".into()),
            ready_timeout: Some("5m".into()),
            checks: vec![RestoreCheck {
                name: "api".into(),
                check: CheckSpec {
                    component: Some("/abs/http.wasm".into()),
                    targets: vec!["http://api.{{namespace}}.svc:80/".into()],
                    allow: vec!["{target}".into()],
                    ..CheckSpec::default()
                },
            }],
            ..RestoreTestSpec::default()
        };
        let table = restore_table("nightly", &spec, &BTreeMap::new(), &no_secret).unwrap();
        let text = as_toml("restore", table);
        assert!(text.contains("[[restore]]"), "{text}");
        assert!(text.contains("ready_timeout = \"5m\""), "{text}");
        assert!(text.contains("[[restore.check]]"), "{text}");
    }
}
