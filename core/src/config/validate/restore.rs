//! Stage two for `[[restore]]` and `[audit]`: the same rules as the rest of
//! the file (every problem names file, line and key; all are reported).

use crate::result::restore::NamespaceMapping;
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use super::Validator;
use crate::config::model::Limits;
use crate::config::raw::{RawCheck, RawRestore};
use crate::config::restore::{
    Acceptance, BackupSource, ClusterAccess, EgressRule, IngressPolicy, Isolation, Readiness,
    RestoreCheck, RestoreSpec, Selection, Template, TemplateVars, Workload, WorkloadKind,
};
use crate::config::restore::{DEFAULT_PROBE_IMAGE, DnsPeer, DnsRule};
use crate::config::values::DurationRange;
use crate::policy::AllowList;

mod job;

/// Values used to check that templates render to something valid: the
/// volatile namespaces a run of `sources` would get (the first one's is
/// `{{namespace}}`).
fn sample_vars(sources: &[String]) -> TemplateVars {
    // Sample names only: templates are rendered to check their syntax, not
    // the restore engine's naming (`restore::mapping`).
    let namespaces: Vec<NamespaceMapping> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| NamespaceMapping::new(s, format!("vantage-restore-sample{i}-0a1b2c")))
        .collect();
    TemplateVars {
        namespace: namespaces
            .first()
            .map(|m| m.volatile.clone())
            .unwrap_or_else(|| "vantage-restore-sample-0a1b2c".into()),
        backup: "sample-backup-20260101000000".into(),
        namespaces,
    }
}

/// `t` rendered with `sample`; a `{{namespace:SOURCE}}` of an unknown
/// source (already an error) renders as a sample namespace too, so it is
/// reported once.
fn render_sample(t: &Template, sample: &TemplateVars) -> String {
    let mut vars = sample.clone();
    for source in t.namespace_sources() {
        if crate::result::restore::volatile_of(&vars.namespaces, source).is_none() {
            vars.namespaces.push(NamespaceMapping::new(
                source,
                "vantage-restore-unknown-0a1b2c",
            ));
        }
    }
    t.render(&vars)
}

/// Why `t` cannot render: a `{{namespace:SOURCE}}` whose SOURCE is not one
/// of the restore test's `sources`.
fn unknown_source(t: &Template, sources: &[String]) -> Option<String> {
    let bad = t
        .namespace_sources()
        .into_iter()
        .find(|s| !sources.iter().any(|x| x == s))?;
    Some(format!(
        "{{{{namespace:{bad}}}}} names {bad:?}, which this restore test does not restore: \
         the source namespaces are {}",
        sources.join(", ")
    ))
}

/// Whether `text` is a Kubernetes DNS label (namespace and object names).
fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Why the sandbox would refuse `target` (rendered with `namespace` as the
/// volatile namespace) in restore mode, if it names a cluster address the
/// run does not open: checks reach exactly the Services of the volatile
/// namespace (`restore::services`), so a Service or pod name in another
/// namespace (production's!) resolves to a private address that is
/// refused.
fn unreachable_cluster_target(target: &str, namespaces: &[&str]) -> Option<String> {
    let url = url::Url::parse(target.trim()).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let kind = labels.get(2).copied()?;
    if !matches!(kind, "svc" | "pod") {
        return None;
    }
    let tail = &labels[3..];
    if !(tail.is_empty() || tail.len() >= 2) {
        return None;
    }
    let target_ns = labels[1];
    if namespaces.contains(&target_ns) {
        return None;
    }
    Some(format!(
        "target {target:?} names a {} in namespace {target_ns:?}, not in the volatile namespace: \
         in restore mode the sandbox reaches only the Services restored into {{{{namespace}}}} and \
         refuses this cluster address; write e.g. \"http://{}.{{{{namespace}}}}.svc.cluster.local\"",
        if kind == "svc" { "Service" } else { "pod" },
        labels[0]
    ))
}

/// Parse `CIDR` or `CIDR:PORT`.
fn parse_egress(text: &str) -> Result<EgressRule, String> {
    let text = text.trim();
    let (addr, rest) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid egress {text:?}: write a CIDR block, e.g. \"10.0.0.0/8\" or \"10.0.0.0/8:5432\""))?;
    let (prefix, port) = match rest.split_once(':') {
        Some((p, port)) => (p, Some(port)),
        None => (rest, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid egress {text:?}: {addr:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => {}
        _ => {
            return Err(format!(
                "invalid egress {text:?}: the prefix length must be 0 to {max}"
            ));
        }
    }
    let ports = match port {
        None => Vec::new(),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => vec![n],
            _ => {
                return Err(format!(
                    "invalid egress {text:?}: {p:?} is not a port (1-65535)"
                ));
            }
        },
    };
    Ok(EgressRule {
        cidr: format!("{addr}/{prefix}"),
        ports,
    })
}

/// Parse a `dns` entry: `NAMESPACE/KEY=VALUE[,KEY=VALUE][:PORT]` (pods) or
/// `CIDR[:PORT]`.
fn parse_dns(text: &str) -> Result<DnsRule, String> {
    let text = text.trim();
    let example = "write \"kube-system/k8s-app=kube-dns\", \"openshift-dns/dns.operator.openshift.io/daemonset-dns=default:5353\" or \"169.254.20.10/32\"";
    let (body, port) = match text.rsplit_once(':') {
        Some((b, p)) if !b.contains("::") && p.chars().all(|c| c.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => (b, n),
                _ => {
                    return Err(format!(
                        "invalid dns {text:?}: {p:?} is not a port (1-65535)"
                    ));
                }
            }
        }
        _ => (text, 53),
    };
    if body.contains('=') {
        let (namespace, selector) = body
            .split_once('/')
            .ok_or_else(|| format!("invalid dns {text:?}: {example}"))?;
        if !is_dns_label(namespace) {
            return Err(format!(
                "invalid dns {text:?}: {namespace:?} is not a namespace name"
            ));
        }
        let mut labels = Vec::new();
        for term in selector.split(',') {
            let (k, v) = term
                .split_once('=')
                .ok_or_else(|| format!("invalid dns {text:?}: {term:?} is not KEY=VALUE"))?;
            let (k, v) = (k.trim(), v.trim());
            let ok = |s: &str| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
            };
            if k.is_empty() || !ok(k) || !ok(v) || v.contains('/') {
                return Err(format!(
                    "invalid dns {text:?}: {term:?} is not a label KEY=VALUE"
                ));
            }
            labels.push((k.to_string(), v.to_string()));
        }
        Ok(DnsRule {
            peer: DnsPeer::Pods {
                namespace: namespace.to_string(),
                labels,
            },
            port,
        })
    } else {
        let rule = parse_egress(body).map_err(|_| format!("invalid dns {text:?}: {example}"))?;
        Ok(DnsRule {
            peer: DnsPeer::Cidr(rule.cidr),
            port,
        })
    }
}

/// Whether `text` names a resource as Velero does: `plural` (core) or
/// `plural.group`, lowercase.
fn is_resource_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

impl Validator<'_> {
    /// One `[[restore]]`; `None` if it has errors (already recorded).
    pub(super) fn restore(
        &mut self,
        index: usize,
        raw: Spanned<RawRestore>,
        defaults: &Limits,
        ceiling: Option<&AllowList>,
        audit_configured: bool,
        seen: &mut HashMap<String, usize>,
    ) -> Option<RestoreSpec> {
        let header = raw.span();
        let raw = raw.into_inner();
        let label = match &raw.name {
            Some(n) => format!("restore {:?}", n.get_ref()),
            None => format!("restore #{}", index + 1),
        };
        let ctx = Some(label.as_str());
        let errors_before = self.errors.len();

        let name = self.unique_name(raw.name.as_ref(), "restore test", header.clone(), ctx, seen);
        let cluster = ClusterAccess {
            kubeconfig: raw.kubeconfig.as_ref().map(|k| self.resolve(k.get_ref())),
            context: raw.context.as_ref().map(|c| c.get_ref().trim().to_string()),
        };
        let velero_namespace = self.label_value(
            raw.velero_namespace.as_ref(),
            ctx,
            "velero_namespace",
            "velero",
        );
        let backup = self.backup_source(&raw, header.clone(), ctx);
        let source_namespaces = self.source_namespaces(&raw, header.clone(), ctx);
        let namespace_prefix = self.namespace_prefix(&raw, ctx);
        let schedule = self.schedule_of(raw.every.as_ref(), raw.cron.as_ref(), header.clone(), ctx);
        let timezone = self.timezone(raw.timezone.as_ref(), ctx);
        let Timeouts {
            restore_timeout,
            ready_timeout,
            ttl,
            poll_interval,
            rto_target,
        } = self.timeouts(&raw, header.clone(), ctx);
        let mut acceptance = Acceptance {
            max_warnings: raw.max_warnings.as_ref().map(|w| *w.get_ref()),
            max_backup_age: raw.max_backup_age.as_ref().and_then(|a| {
                let range = DurationRange::SELECTION_WINDOW;
                self.duration(a, ctx, "max_backup_age", "26h", range)
            }),
            jobs: Vec::new(),
        };
        let workloads = self.workloads(&raw, ctx);
        let egress = self.egress(&raw, ctx);
        let extra = self.isolation_extras(&raw, ctx);
        let ingresses = self.ingress_policy(&raw, ctx);
        let edge_target = raw.edge_target.as_ref().map(|t| {
            let template = Template(t.get_ref().trim().to_string());
            self.template(&template, &source_namespaces, t.span(), ctx, "edge_target");
            template
        });
        let audit = self.audit_flag(&raw, audit_configured, ctx);
        let severity = self.severity(raw.severity.as_ref(), ctx);

        acceptance.jobs = self.restore_jobs(raw.job, &source_namespaces, ctx);
        let (checks, any_check) = self.restore_checks(
            index,
            raw.check,
            &label,
            &source_namespaces,
            defaults,
            ceiling,
        );
        if !any_check && acceptance.jobs.is_empty() && self.errors.len() == errors_before {
            let msg = "the restore test has no [[restore.check]]: only the restore and readiness \
                       are proven, nothing checks that the application works"
                .to_string();
            self.warn(header.clone(), ctx, Some("check"), msg);
        }

        if self.errors.len() > errors_before {
            return None;
        }
        Some(RestoreSpec {
            name: name?,
            cluster,
            velero_namespace,
            backup: backup?,
            accept_partially_failed: raw
                .accept_partially_failed
                .map(Spanned::into_inner)
                .unwrap_or(false),
            source_namespaces,
            namespace_prefix,
            schedule: schedule?,
            timezone: timezone?,
            restore_timeout,
            poll_interval,
            readiness: Readiness {
                workloads,
                timeout: ready_timeout,
            },
            checks,
            edge_target,
            rto_target,
            isolation: Isolation {
                egress,
                ingresses,
                suspend_cronjobs: raw
                    .suspend_cronjobs
                    .map(Spanned::into_inner)
                    .unwrap_or(true),
                ..extra
            },
            ttl,
            audit,
            severity,
            acceptance,
        })
    }

    /// `egress`: the extra destinations the restored app may reach.
    fn egress(&mut self, raw: &RawRestore, ctx: Option<&str>) -> Vec<EgressRule> {
        let mut egress = Vec::new();
        for e in raw.egress.iter().flat_map(|l| l.get_ref()) {
            match parse_egress(e.get_ref()) {
                Ok(rule) => {
                    self.egress_rule(&rule, e.span(), ctx);
                    egress.push(rule);
                }
                Err(msg) => self.error(e.span(), ctx, Some("egress"), msg),
            }
        }
        egress
    }

    /// `audit`: on by default when `[audit]` is configured, an error when
    /// asked for without it.
    fn audit_flag(&mut self, raw: &RawRestore, configured: bool, ctx: Option<&str>) -> bool {
        match &raw.audit {
            Some(a) if *a.get_ref() && !configured => {
                let msg =
                    "audit = true, but no [audit] section configures the audit log".to_string();
                self.error(a.span(), ctx, Some("audit"), msg);
                false
            }
            Some(a) => *a.get_ref(),
            None => configured,
        }
    }

    /// `namespaces`: the backup's namespaces to restore, each a valid
    /// namespace name, none twice.
    fn source_namespaces(
        &mut self,
        raw: &RawRestore,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Vec<String> {
        let mut source_namespaces = Vec::new();
        match &raw.namespaces {
            Some(list) if !list.get_ref().is_empty() => {
                for ns in list.get_ref() {
                    if source_namespaces.contains(ns.get_ref()) {
                        let msg = format!(
                            "namespace {:?} is listed twice: each source namespace is restored \
                             into its own volatile namespace once",
                            ns.get_ref()
                        );
                        self.error(ns.span(), ctx, Some("namespaces"), msg);
                    } else if is_dns_label(ns.get_ref()) {
                        source_namespaces.push(ns.get_ref().clone());
                    } else {
                        let msg = format!(
                            "invalid namespace {:?}: a Kubernetes namespace name (lowercase letters, digits, `-`)",
                            ns.get_ref()
                        );
                        self.error(ns.span(), ctx, Some("namespaces"), msg);
                    }
                }
            }
            Some(list) => {
                let msg = "no namespaces: name the backup's namespaces to restore, e.g. namespaces = [\"shop\"]".to_string();
                self.error(list.span(), ctx, Some("namespaces"), msg);
            }
            None => {
                let msg = "missing: name the backup's namespaces to restore, e.g. namespaces = [\"shop\"]".to_string();
                self.error(header.clone(), ctx, Some("namespaces"), msg);
            }
        }
        source_namespaces
    }

    /// `namespace_prefix` (default `vantage-restore-`).
    fn namespace_prefix(&mut self, raw: &RawRestore, ctx: Option<&str>) -> String {
        match &raw.namespace_prefix {
            Some(p) => {
                let text = p.get_ref();
                let ok = text.len() <= 30
                    && text.starts_with(|c: char| c.is_ascii_lowercase())
                    && text
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    let msg = format!(
                        "invalid namespace_prefix {text:?}: up to 30 lowercase letters, digits and `-`, starting with a letter"
                    );
                    self.error(p.span(), ctx, Some("namespace_prefix"), msg);
                }
                text.clone()
            }
            None => "vantage-restore-".to_string(),
        }
    }

    /// `restore_timeout`, `ready_timeout`, `ttl` (longer than both
    /// together), `poll_interval` and `rto`.
    fn timeouts(&mut self, raw: &RawRestore, header: Range<usize>, ctx: Option<&str>) -> Timeouts {
        let duration = |v: &mut Self,
                        raw: &Option<Spanned<toml::Value>>,
                        key: &str,
                        example: &str,
                        range: DurationRange,
                        default: Duration| match raw {
            Some(d) => v.duration(d, ctx, key, example, range).unwrap_or(default),
            None => default,
        };
        let restore_timeout = duration(
            self,
            &raw.restore_timeout,
            "restore_timeout",
            "30m",
            DurationRange::RESTORE_TIMEOUT,
            Duration::from_secs(1800),
        );
        let ready_timeout = duration(
            self,
            &raw.ready_timeout,
            "ready_timeout",
            "10m",
            DurationRange::RESTORE_TIMEOUT,
            Duration::from_secs(600),
        );
        let ttl = duration(
            self,
            &raw.ttl,
            "ttl",
            "6h",
            DurationRange::RESTORE_TTL,
            Duration::from_secs(6 * 3600),
        );
        let poll_interval = duration(
            self,
            &raw.poll_interval,
            "poll_interval",
            "2s",
            DurationRange::POLL_INTERVAL,
            Duration::from_secs(2),
        );
        let rto_target = raw
            .rto
            .as_ref()
            .and_then(|r| self.duration(r, ctx, "rto", "45m", DurationRange::RESTORE_TTL));
        if ttl <= restore_timeout.saturating_add(ready_timeout) {
            let span = raw
                .ttl
                .as_ref()
                .or(raw.restore_timeout.as_ref())
                .or(raw.ready_timeout.as_ref())
                .map(Spanned::span)
                .unwrap_or(header.clone());
            let msg = format!(
                "ttl ({}) must be longer than restore_timeout + ready_timeout ({}): the janitor \
                 would delete the namespace while the run still uses it",
                crate::units::human_seconds(ttl.as_secs_f64()),
                crate::units::human_seconds(
                    restore_timeout.saturating_add(ready_timeout).as_secs_f64()
                ),
            );
            self.error(span, ctx, Some("ttl"), msg);
        }
        Timeouts {
            restore_timeout,
            ready_timeout,
            ttl,
            poll_interval,
            rto_target,
        }
    }

    /// `ready`: `deployment/NAME` or `statefulset/NAME` entries.
    fn workloads(&mut self, raw: &RawRestore, ctx: Option<&str>) -> Vec<Workload> {
        let mut workloads = Vec::new();
        for w in raw.ready.iter().flat_map(|l| l.get_ref()) {
            let parsed = w.get_ref().split_once('/').and_then(|(kind, name)| {
                let kind = match kind.trim().to_ascii_lowercase().as_str() {
                    "deployment" | "deploy" => WorkloadKind::Deployment,
                    "statefulset" | "sts" => WorkloadKind::StatefulSet,
                    _ => return None,
                };
                is_dns_label(name.trim()).then(|| Workload {
                    kind,
                    name: name.trim().to_string(),
                })
            });
            match parsed {
                Some(w) => workloads.push(w),
                None => {
                    let msg = format!(
                        "invalid workload {:?}: write \"deployment/NAME\" or \"statefulset/NAME\"",
                        w.get_ref()
                    );
                    self.error(w.span(), ctx, Some("ready"), msg);
                }
            }
        }
        workloads
    }

    /// `ingress` and `ingress_host_suffix`.
    fn ingress_policy(&mut self, raw: &RawRestore, ctx: Option<&str>) -> IngressPolicy {
        match (&raw.ingress, &raw.ingress_host_suffix) {
            (None, None) => IngressPolicy::Exclude,
            (Some(i), suffix) => match (i.get_ref().trim(), suffix) {
                ("exclude", None) => IngressPolicy::Exclude,
                ("exclude", Some(s)) => {
                    let msg =
                        "ingress_host_suffix only applies with ingress = \"rewrite\"".to_string();
                    self.error(s.span(), ctx, Some("ingress_host_suffix"), msg);
                    IngressPolicy::Exclude
                }
                ("rewrite", Some(s)) => IngressPolicy::RewriteHost {
                    suffix: s.get_ref().trim().trim_start_matches('.').to_string(),
                },
                ("rewrite", None) => {
                    let msg = "ingress = \"rewrite\" needs ingress_host_suffix, e.g. \"restore.example.com\": hosts become {{namespace}}.SUFFIX".to_string();
                    self.error(i.span(), ctx, Some("ingress_host_suffix"), msg);
                    IngressPolicy::Exclude
                }
                (other, _) => {
                    let msg =
                        format!("invalid ingress {other:?}: expected \"exclude\" or \"rewrite\"");
                    self.error(i.span(), ctx, Some("ingress"), msg);
                    IngressPolicy::Exclude
                }
            },
            (None, Some(s)) => {
                let msg = "ingress_host_suffix needs ingress = \"rewrite\"".to_string();
                self.error(s.span(), ctx, Some("ingress"), msg);
                IngressPolicy::Exclude
            }
        }
    }

    /// Every `[[restore.check]]` of restore test number `index`, and
    /// whether there was any.
    fn restore_checks(
        &mut self,
        index: usize,
        raw: Vec<Spanned<RawCheck>>,
        label: &str,
        sources: &[String],
        defaults: &Limits,
        ceiling: Option<&AllowList>,
    ) -> (Vec<RestoreCheck>, bool) {
        let mut local = HashMap::new();
        let checks: Vec<RestoreCheck> = raw
            .into_iter()
            .enumerate()
            .filter_map(|(ci, c)| {
                self.restore_check(index, ci, c, label, sources, defaults, ceiling, &mut local)
            })
            .collect();
        (checks, !local.is_empty())
    }

    /// Warnings and errors about one `egress` block: everything
    /// (`0.0.0.0/0`, `::/0`) is allowed but warned about; a block inside a
    /// cloud metadata address is refused (it is always excepted).
    fn egress_rule(&mut self, rule: &EgressRule, span: Range<usize>, ctx: Option<&str>) {
        if rule.cidr.ends_with("/0") {
            let msg = format!(
                "egress {:?} lets the restored app (with production Secrets) reach every address \
                 outside the cluster, production included; name the blocks it needs",
                rule.cidr
            );
            self.warn(span.clone(), ctx, Some("egress"), msg);
        }
        // A single address that is a metadata address: excepting it from
        // itself is not a valid ipBlock, and it is never allowed anyway.
        let inside = crate::policy::metadata_inside(&rule.cidr);
        let single = rule.cidr.ends_with("/32") || rule.cidr.ends_with("/128");
        if single && !inside.is_empty() {
            let msg = format!(
                "egress {:?} is the cloud metadata address: restored pods never get it \
                 (it would hand them the node's cloud credentials)",
                rule.cidr
            );
            self.error(span, ctx, Some("egress"), msg);
        }
    }

    /// The isolation settings beyond `egress`, `ingress` and
    /// `suspend_cronjobs` (errors recorded).
    fn isolation_extras(&mut self, raw: &RawRestore, ctx: Option<&str>) -> Isolation {
        let defaults = crate::config::DEFAULT_EXCLUDED;
        let mut extra = Isolation::default();
        for (list, key, target) in [
            (
                &raw.exclude_kinds,
                "exclude_kinds",
                &mut extra.exclude_kinds,
            ),
            (&raw.keep_kinds, "keep_kinds", &mut extra.keep_kinds),
        ] {
            for k in list.iter().flat_map(|l| l.get_ref()) {
                let text = k.get_ref().trim();
                if !is_resource_name(text) {
                    let msg = format!(
                        "invalid {key} entry {text:?}: a resource as Velero names it, \
                         plural.group (e.g. \"httproutes.gateway.networking.k8s.io\")"
                    );
                    self.error(k.span(), ctx, Some(key), msg);
                } else if key == "keep_kinds" && !defaults.contains(&text) {
                    let msg = format!(
                        "{text:?} is not excluded by default, so there is nothing to keep; \
                         excluded by default: {}",
                        defaults.join(", ")
                    );
                    self.error(k.span(), ctx, Some(key), msg);
                } else {
                    target.push(text.to_string());
                }
            }
        }
        for k in &extra.keep_kinds {
            if k.starts_with("networkpolicies.") || k.contains("networkpolicies.") {
                let span = raw
                    .keep_kinds
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or_default();
                let msg = format!(
                    "keep_kinds restores {k}: NetworkPolicies are additive, a restored one can \
                     let the restored app reach production"
                );
                self.warn(span, ctx, Some("keep_kinds"), msg);
            }
        }
        if let Some(n) = &raw.neutralize_services {
            extra.neutralize_services = *n.get_ref();
        }
        if let Some(list) = &raw.dns {
            extra.dns.clear();
            for d in list.get_ref() {
                match parse_dns(d.get_ref()) {
                    Ok(rule) => extra.dns.push(rule),
                    Err(msg) => self.error(d.span(), ctx, Some("dns"), msg),
                }
            }
            if list.get_ref().is_empty() {
                let msg = "dns = []: restored pods cannot resolve names; omit `dns` for kube-dns"
                    .to_string();
                self.warn(list.span(), ctx, Some("dns"), msg);
            }
        }
        for e in raw.isolation_probe.iter().flat_map(|l| l.get_ref()) {
            match crate::config::split_endpoint(e.get_ref().trim()) {
                Some(_) => extra.isolation_probe.push(e.get_ref().trim().to_string()),
                None => {
                    let msg = format!(
                        "invalid isolation_probe endpoint {:?}: write HOST:PORT, e.g. \
                         \"postgres.shop.svc.cluster.local:5432\"",
                        e.get_ref()
                    );
                    self.error(e.span(), ctx, Some("isolation_probe"), msg);
                }
            }
        }
        extra.probe_image = match &raw.probe_image {
            Some(i) if i.get_ref().trim().is_empty() => {
                let msg = "probe_image is empty".to_string();
                self.error(i.span(), ctx, Some("probe_image"), msg);
                DEFAULT_PROBE_IMAGE.to_string()
            }
            Some(i) => i.get_ref().trim().to_string(),
            None => DEFAULT_PROBE_IMAGE.to_string(),
        };
        extra
    }

    /// A Kubernetes name that defaults to `default`.
    fn label_value(
        &mut self,
        raw: Option<&Spanned<String>>,
        ctx: Option<&str>,
        key: &str,
        default: &str,
    ) -> String {
        let Some(raw) = raw else {
            return default.to_string();
        };
        if !is_dns_label(raw.get_ref()) {
            let msg = format!(
                "invalid {key} {:?}: a Kubernetes name (lowercase letters, digits, `-`)",
                raw.get_ref()
            );
            self.error(raw.span(), ctx, Some(key), msg);
        }
        raw.get_ref().clone()
    }

    fn backup_source(
        &mut self,
        raw: &RawRestore,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Option<BackupSource> {
        match (&raw.schedule, &raw.backup) {
            (Some(_), Some(b)) => {
                let msg = "`schedule` and `backup` are both set: restore the backups of a Velero \
                           Schedule, or one named backup"
                    .to_string();
                self.error(b.span(), ctx, Some("backup"), msg);
                None
            }
            (None, None) => {
                let msg = "missing: which backup to restore: schedule = \"<velero schedule>\" \
                           (its latest backup) or backup = \"<backup name>\""
                    .to_string();
                self.error(header, ctx, Some("schedule"), msg);
                None
            }
            (None, Some(b)) => {
                if let Some(s) = &raw.selection {
                    let msg =
                        "`selection` applies to `schedule`, not to a named `backup`".to_string();
                    self.error(s.span(), ctx, Some("selection"), msg);
                }
                Some(BackupSource::Named(b.get_ref().trim().to_string()))
            }
            (Some(s), None) => {
                let selection = match (
                    raw.selection.as_ref().map(|s| s.get_ref().trim()),
                    &raw.window,
                ) {
                    (None | Some("latest"), None) => Selection::Latest,
                    (None | Some("latest"), Some(w)) => {
                        let msg = "`window` applies to selection = \"random\"".to_string();
                        self.error(w.span(), ctx, Some("window"), msg);
                        Selection::Latest
                    }
                    (Some("random"), Some(w)) => Selection::RandomWithin(
                        self.duration(w, ctx, "window", "7d", DurationRange::SELECTION_WINDOW)
                            .unwrap_or(Duration::from_secs(7 * 86400)),
                    ),
                    (Some("random"), None) => {
                        let span = raw.selection.as_ref().map(Spanned::span).unwrap_or(header);
                        let msg = "selection = \"random\" needs a window, e.g. window = \"7d\""
                            .to_string();
                        self.error(span, ctx, Some("window"), msg);
                        Selection::Latest
                    }
                    (Some(other), _) => {
                        let span = raw.selection.as_ref().map(Spanned::span).unwrap_or(header);
                        let msg = format!(
                            "invalid selection {other:?}: expected \"latest\" or \"random\""
                        );
                        self.error(span, ctx, Some("selection"), msg);
                        Selection::Latest
                    }
                };
                Some(BackupSource::Schedule {
                    name: s.get_ref().trim().to_string(),
                    selection,
                })
            }
        }
    }

    /// Report unknown `{{...}}` placeholders in a template, and
    /// `{{namespace:SOURCE}}` naming no source namespace of the test.
    fn template(
        &mut self,
        t: &Template,
        sources: &[String],
        span: Range<usize>,
        ctx: Option<&str>,
        key: &str,
    ) {
        if let Some(bad) = t.unknown_placeholder() {
            let msg = format!(
                "unknown placeholder {bad}: restore checks may use {{{{namespace}}}}, {{{{namespace:SOURCE}}}}, {{{{backup}}}} and {{{{secret.NAME}}}}"
            );
            self.error(span.clone(), ctx, Some(key), msg);
        }
        if let Some(msg) = unknown_source(t, sources) {
            self.error(span, ctx, Some(key), msg);
        }
    }

    /// Keys of `[[check]]` that make no sense in a restore check: the
    /// restore test owns the schedule and the verdict.
    fn refuse_scheduling_keys(&mut self, raw: &RawCheck, ctx: Option<&str>) {
        let scheduled: [(&str, Option<Range<usize>>); 10] = [
            ("every", raw.every.as_ref().map(Spanned::span)),
            ("cron", raw.cron.as_ref().map(Spanned::span)),
            ("jitter", raw.jitter.as_ref().map(Spanned::span)),
            ("timezone", raw.timezone.as_ref().map(Spanned::span)),
            (
                "failure_threshold",
                raw.failure_threshold.as_ref().map(Spanned::span),
            ),
            (
                "success_threshold",
                raw.success_threshold.as_ref().map(Spanned::span),
            ),
            ("retries", raw.retries.as_ref().map(Spanned::span)),
            ("retry_delay", raw.retry_delay.as_ref().map(Spanned::span)),
            ("severity", raw.severity.as_ref().map(Spanned::span)),
            ("mode", raw.mode.as_ref().map(Spanned::span)),
        ];
        for (key, span) in scheduled {
            if let Some(span) = span {
                let msg = format!(
                    "`{key}` does not apply to a restore check: it runs once per restore test, \
                     in mode restore, and the restore test's verdict counts"
                );
                self.error(span, ctx, Some(key), msg);
            }
        }
    }

    /// `targets` and `allow` as templates; rendered with sample namespaces,
    /// they are checked once now (patterns, `{target}`, the ceiling, and
    /// cluster addresses a check could not reach).
    fn restore_targets(
        &mut self,
        raw: &RawCheck,
        sources: &[String],
        header: Range<usize>,
        ceiling: Option<&AllowList>,
        ctx: Option<&str>,
    ) -> (Vec<Template>, Vec<Template>) {
        let sample = sample_vars(sources);
        let sample_namespaces: Vec<&str> = sample
            .namespaces
            .iter()
            .map(|m| m.volatile.as_str())
            .collect();
        let mut targets = Vec::new();
        let mut rendered_targets = Vec::new();
        for t in raw.targets.iter().flat_map(|l| l.get_ref()) {
            let template = Template(t.get_ref().clone());
            self.template(&template, sources, t.span(), ctx, "targets");
            rendered_targets.push(Spanned::new(t.span(), render_sample(&template, &sample)));
            targets.push(template);
        }
        let mut allow = Vec::new();
        let mut rendered_allow = Vec::new();
        for a in raw.allow.iter().flat_map(|l| l.get_ref()) {
            let template = Template(a.get_ref().clone());
            self.template(&template, sources, a.span(), ctx, "allow");
            rendered_allow.push(Spanned::new(a.span(), render_sample(&template, &sample)));
            allow.push(template);
        }
        // Check the rendered list once now (patterns, `{target}`, ceiling);
        // each run renders and parses it again with the real namespace.
        let list_span = raw
            .allow
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(header.clone());
        let rendered_allow = Spanned::new(list_span, rendered_allow);
        self.allow(Some(&rendered_allow), &rendered_targets, ceiling, ctx);
        for t in &rendered_targets {
            if let Some(msg) = unreachable_cluster_target(t.get_ref(), &sample_namespaces) {
                self.warn(t.span(), ctx, Some("targets"), msg);
            }
        }
        (targets, allow)
    }

    /// One `[[restore.check]]`.
    #[allow(clippy::too_many_arguments)]
    fn restore_check(
        &mut self,
        restore_index: usize,
        index: usize,
        raw: Spanned<RawCheck>,
        restore_label: &str,
        sources: &[String],
        defaults: &Limits,
        ceiling: Option<&AllowList>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<RestoreCheck> {
        let header = raw.span();
        let raw = raw.into_inner();
        let label = match &raw.name {
            Some(n) => format!("{restore_label} check {:?}", n.get_ref()),
            None => format!("{restore_label} check #{}", index + 1),
        };
        let ctx = Some(label.as_str());
        let errors_before = self.errors.len();

        self.refuse_scheduling_keys(&raw, ctx);
        let name = self.unique_name(raw.name.as_ref(), "check", header.clone(), ctx, seen);
        let component = self.component(&raw, header.clone(), ctx);

        let (targets, allow) = self.restore_targets(&raw, sources, header.clone(), ceiling, ctx);

        let limits = self.limits(&raw, defaults, ctx);
        let table = [
            "restore".to_string(),
            restore_index.to_string(),
            "check".to_string(),
            index.to_string(),
        ];
        let (secrets, config) = self.secrets_and_config(&raw, &table, ctx);
        let config_span = raw
            .config
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(header.clone());
        let config: Vec<(String, Template)> = config
            .into_iter()
            .map(|(k, v)| {
                let t = Template(v);
                self.template(
                    &t,
                    sources,
                    config_span.clone(),
                    ctx,
                    &format!("config.{k}"),
                );
                (k, t)
            })
            .collect();

        if self.errors.len() > errors_before {
            return None;
        }
        Some(RestoreCheck {
            name: name?,
            component: component?,
            targets,
            config,
            allow,
            secrets,
            limits,
            allow_insecure: raw.allow_insecure.map(Spanned::into_inner).unwrap_or(false),
        })
    }
}

/// The durations of one restore test (see `Validator::timeouts`).
struct Timeouts {
    restore_timeout: Duration,
    ready_timeout: Duration,
    ttl: Duration,
    poll_interval: Duration,
    rto_target: Option<Duration>,
}
