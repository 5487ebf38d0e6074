//! Stage two for `[[check]]`: name, component, schedule, limits, allow list and secrets.

use crate::config::secret_references;
use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use serde_spanned::Spanned;

use crate::config::error::{check_label, span_of};
use crate::config::model::{CheckSpec, ComponentRef, Limits, Schedule};
use crate::config::raw::{RawCheck, SpannedList};
use crate::config::values::{
    DurationRange, MIN_EVERY, SecretSource, ValueError, flatten_config, is_secret_name,
    parse_duration, parse_memory,
};
use crate::policy::{AllowList, AllowPattern, TARGET_PLACEHOLDER, expand_entry};

use super::{CRON_HORIZON_DAYS, Validator};

/// A check's granted secrets: name and source.
type Secrets = Vec<(String, SecretSource)>;
/// A check's `config` table flattened to dotted keys and string values.
type FlatConfig = Vec<(String, String)>;

impl Validator<'_> {
    /// A cron expression, with a message showing the form on error.
    pub(super) fn cron(
        &mut self,
        cron: &Spanned<String>,
        ctx: Option<&str>,
    ) -> Option<croner::Cron> {
        let text = cron.get_ref().trim();
        match croner::Cron::from_str(text) {
            Ok(parsed) => {
                // An expression that parses may still never match (`* * 31 2
                // *`): a check that would never run is an error, not a
                // silent no-op.
                let now = chrono::Utc::now();
                let horizon = now + chrono::Duration::days(CRON_HORIZON_DAYS);
                match parsed.find_next_occurrence(&now, false) {
                    Ok(next) if next <= horizon => Some(parsed),
                    _ => {
                        let msg = format!(
                            "cron expression {text:?} never matches within the next 5 years \
                             (e.g. day 31 of February): it would never run; check the \
                             day-of-month and month fields"
                        );
                        self.error(cron.span(), ctx, Some("cron"), msg);
                        None
                    }
                }
            }
            Err(e) => {
                let reason = e.to_string();
                let reason = reason.trim_end_matches('.');
                let msg = format!(
                    "invalid cron expression {text:?}: {reason}; write minute hour \
                     day-of-month month day-of-week (seconds first, optionally), \
                     e.g. \"*/5 * * * *\""
                );
                self.error(cron.span(), ctx, Some("cron"), msg);
                None
            }
        }
    }

    /// One `[[check]]`; `None` if it has errors (already recorded).
    pub(super) fn check(
        &mut self,
        index: usize,
        raw: Spanned<RawCheck>,
        defaults: &Limits,
        ceiling: Option<&AllowList>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<CheckSpec> {
        let header = raw.span();
        let raw = raw.into_inner();
        let label = check_label(raw.name.as_ref().map(|n| n.get_ref().as_str()), index);
        let ctx = Some(label.as_str());
        let errors_before = self.errors.len();

        let name = self.check_name(&raw, header.clone(), ctx, seen);
        let component = self.component(&raw, header.clone(), ctx);
        let schedule = self.schedule(&raw, header.clone(), ctx);
        let jitter = match &raw.jitter {
            Some(j) => self.duration(j, ctx, "jitter", "5s", DurationRange::JITTER),
            None => Some(Duration::ZERO),
        };

        let targets = self.targets(&raw, ctx);
        let raw_targets: &[Spanned<String>] = raw.targets.as_ref().map_or(&[], |l| l.get_ref());
        let allow = self.allow(raw.allow.as_ref(), raw_targets, ceiling, ctx);

        let limits = self.limits(&raw, defaults, ctx);

        let timezone = self.timezone(raw.timezone.as_ref(), ctx);
        if let (Some(tz), Some(Schedule::Every(_))) = (&raw.timezone, &schedule) {
            let msg = "`timezone` only applies to `cron` schedules".to_string();
            self.warn(tz.span(), ctx, Some("timezone"), msg);
        }
        let failure_threshold = self.count(
            raw.failure_threshold.as_ref(),
            ctx,
            "failure_threshold",
            1..=1000,
            1,
        );
        let success_threshold = self.count(
            raw.success_threshold.as_ref(),
            ctx,
            "success_threshold",
            1..=1000,
            1,
        );
        let retries = self.count(raw.retries.as_ref(), ctx, "retries", 0..=10, 0);
        let retry_delay = match &raw.retry_delay {
            Some(d) => self
                .duration(d, ctx, "retry_delay", "2s", DurationRange::RETRY_DELAY)
                .unwrap_or(Duration::from_secs(1)),
            None => Duration::from_secs(1),
        };
        let severity = self.severity(raw.severity.as_ref(), ctx);

        let (secrets, config) =
            self.secrets_and_config(&raw, &["check".to_string(), index.to_string()], ctx);

        self.check_warnings(&raw, schedule.as_ref(), jitter, &limits, ctx);

        if self.errors.len() > errors_before {
            return None;
        }
        Some(CheckSpec {
            name: name?,
            component: component?,
            schedule: schedule?,
            jitter: jitter?,
            targets,
            allow,
            secrets,
            limits,
            mode: raw.mode.map(Spanned::into_inner).unwrap_or_default(),
            config,
            timezone: timezone?,
            failure_threshold,
            success_threshold,
            retries,
            retry_delay,
            severity,
            allow_insecure: raw.allow_insecure.map(Spanned::into_inner).unwrap_or(false),
        })
    }

    /// `targets`: each kept as written; an empty one is an error.
    fn targets(&mut self, raw: &RawCheck, ctx: Option<&str>) -> Vec<String> {
        let mut targets = Vec::new();
        for t in raw.targets.iter().flat_map(|l| l.get_ref()) {
            if t.get_ref().trim().is_empty() {
                let msg = "a target is empty: write a URL like \"https://api.example.com/healthz\""
                    .to_string();
                self.error(t.span(), ctx, Some("targets"), msg);
            }
            targets.push(t.get_ref().clone());
        }
        targets
    }

    /// `severity`: a word (letters, digits, `-`, `_`), `critical` by
    /// default; for checks and restore tests alike.
    pub(super) fn severity(&mut self, raw: Option<&Spanned<String>>, ctx: Option<&str>) -> String {
        let Some(s) = raw else {
            return "critical".to_string();
        };
        let text = s.get_ref().trim();
        let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if text.is_empty() || !text.chars().all(word) {
            let msg = format!(
                "invalid severity {:?}: write a word like \"critical\" or \"warning\"",
                s.get_ref()
            );
            self.error(s.span(), ctx, Some("severity"), msg);
        }
        text.to_string()
    }

    /// Warnings: configurations that work, but probably not as meant.
    fn check_warnings(
        &mut self,
        raw: &RawCheck,
        schedule: Option<&Schedule>,
        jitter: Option<Duration>,
        limits: &Limits,
        ctx: Option<&str>,
    ) {
        let allow_empty = raw.allow.as_ref().is_none_or(|l| l.get_ref().is_empty());
        if let (Some(t), true) = (&raw.targets, allow_empty)
            && !t.get_ref().is_empty()
        {
            let msg = "the check has targets but no `allow`, so all outbound access is denied; \
                       add allow = [\"{target}\"] to let it reach its targets"
                .to_string();
            self.warn(t.span(), ctx, Some("targets"), msg);
        }
        if let (Some(Schedule::Every(every)), Some(j), Some(raw_j)) =
            (schedule, jitter, &raw.jitter)
            && j >= *every
        {
            let msg = format!(
                "jitter ({}) is not shorter than the interval ({})",
                humantime::format_duration(j),
                humantime::format_duration(*every)
            );
            self.warn(raw_j.span(), ctx, Some("jitter"), msg);
        }
        if let (Some(Schedule::Every(every)), Some(raw_t)) = (schedule, &raw.timeout)
            && limits.timeout > *every
        {
            let msg = format!(
                "timeout ({}) is longer than the interval ({}): runs may be skipped",
                humantime::format_duration(limits.timeout),
                humantime::format_duration(*every)
            );
            self.warn(raw_t.span(), ctx, Some("timeout"), msg);
        }
    }

    /// A check's `timeout`, `memory`, `fuel` and `cpu` over `defaults`: the
    /// one parser of limits, for checks and restore checks alike.
    pub(super) fn limits(
        &mut self,
        raw: &RawCheck,
        defaults: &Limits,
        ctx: Option<&str>,
    ) -> Limits {
        let mut limits = defaults.clone();
        if let Some(t) = &raw.timeout {
            limits.timeout = self
                .duration(t, ctx, "timeout", "10s", DurationRange::TIMEOUT)
                .unwrap_or(limits.timeout);
        }
        if let Some(m) = &raw.memory {
            limits.memory = self
                .parse_text(m, ctx, "memory", "64MiB", parse_memory)
                .unwrap_or(limits.memory);
        }
        if let Some(f) = &raw.fuel {
            limits.fuel = self.fuel(f, ctx);
        }
        if let Some(c) = &raw.cpu {
            limits.cpu = self
                .parse_text(c, ctx, "cpu", "2s", parse_cpu)
                .or(limits.cpu);
        }
        self.cpu_within_timeout(raw.cpu.as_ref().or(raw.timeout.as_ref()), &limits, ctx);
        limits
    }

    /// Warn when a `cpu` limit can never be reached because the wall-clock
    /// `timeout` ends the run first (`at` is the key that made it so).
    pub(super) fn cpu_within_timeout(
        &mut self,
        at: Option<&Spanned<toml::Value>>,
        limits: &Limits,
        ctx: Option<&str>,
    ) {
        let (Some(at), Some(cpu)) = (at, limits.cpu) else {
            return;
        };
        if cpu >= limits.timeout {
            let msg = format!(
                "cpu {} is not below timeout {}: the timeout always ends the run first",
                humantime::format_duration(cpu),
                humantime::format_duration(limits.timeout)
            );
            self.warn(at.span(), ctx, Some("cpu"), msg);
        }
    }

    pub(super) fn check_name(
        &mut self,
        raw: &RawCheck,
        header: Range<usize>,
        ctx: Option<&str>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<String> {
        self.unique_name(raw.name.as_ref(), "check", header, ctx, seen)
    }

    /// The `name` of a check or restore test (`what`): present, a valid
    /// label, and not used by any other check or restore test.
    pub(super) fn unique_name(
        &mut self,
        name: Option<&Spanned<String>>,
        what: &str,
        header: Range<usize>,
        ctx: Option<&str>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<String> {
        let Some(name) = name else {
            let msg = format!(
                "missing: every {} needs a unique name, e.g. name = \"api-health\"",
                match what {
                    "check" => "[[check]]",
                    "heartbeat" => "[[heartbeat]]",
                    _ => "[[restore]]",
                }
            );
            self.error(header, ctx, Some("name"), msg);
            return None;
        };
        let text = name.get_ref();
        let valid = text.len() <= 63
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            let msg = format!(
                "invalid {what} name {text:?}: use up to 63 lowercase letters, digits, `-` and `_`, \
                 starting with a letter or digit, e.g. \"api-health\""
            );
            self.error(name.span(), ctx, Some("name"), msg);
            return None;
        }
        // `seen` keeps byte offsets: computing a line scans the text from the
        // start, so it is done only for the error (once per check made
        // validating 10,000 checks quadratic: 11 s).
        if let Some(&first) = seen.get(text) {
            let (first, _) = self.src.position(first);
            let msg = format!(
                "duplicate {what} name {text:?}: line {first} already defines a check or restore \
                 test with this name"
            );
            self.error(name.span(), ctx, Some("name"), msg);
            return None;
        }
        seen.insert(text.clone(), name.span().start);
        Some(text.clone())
    }

    pub(super) fn component(
        &mut self,
        raw: &RawCheck,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Option<ComponentRef> {
        let Some(component) = &raw.component else {
            let msg = "missing: set the check's component, a .wasm path (relative to this file) \
                       or an oci:// reference"
                .to_string();
            self.error(header, ctx, Some("component"), msg);
            return None;
        };
        let text = component.get_ref();
        let bad = |why: &str| Some(why.to_string());
        let problem = if let Some(reference) = text.strip_prefix("oci://") {
            if reference.is_empty() || reference.contains(char::is_whitespace) {
                bad(
                    "invalid registry reference: write oci://REGISTRY/REPOSITORY:TAG, e.g. oci://ghcr.io/acme/http:1.0",
                )
            } else {
                None
            }
        } else if text.trim().is_empty() {
            bad(
                "the component is empty: write the path of a .wasm file (relative to this file) or an oci:// reference",
            )
        } else if let Some((scheme, _)) = text.split_once("://") {
            Some(format!(
                "unsupported component source {scheme}://: write a .wasm path or an oci:// reference"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            self.error(component.span(), ctx, Some("component"), message);
            return None;
        }
        let reference = if text.starts_with("oci://") {
            ComponentRef::Oci(text.clone())
        } else {
            ComponentRef::Path(self.resolve(text))
        };
        let place = self.place(component.span().start, ctx, "component");
        self.component_keys.push((reference.clone(), place));
        Some(reference)
    }

    pub(super) fn schedule(
        &mut self,
        raw: &RawCheck,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Option<Schedule> {
        self.schedule_of(raw.every.as_ref(), raw.cron.as_ref(), header, ctx)
    }

    /// Exactly one of `every` and `cron`.
    pub(super) fn schedule_of(
        &mut self,
        every: Option<&Spanned<toml::Value>>,
        cron: Option<&Spanned<String>>,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Option<Schedule> {
        match (every, cron) {
            (Some(every), Some(cron)) => {
                let (key, span) = if cron.span().start > every.span().start {
                    ("cron", cron.span())
                } else {
                    ("every", every.span())
                };
                let msg = "`every` and `cron` are both set: keep exactly one".to_string();
                self.error(span, ctx, Some(key), msg);
                None
            }
            (None, None) => {
                let msg =
                    "missing schedule: set every = \"1m\" or cron = \"*/5 * * * *\"".to_string();
                self.error(header, ctx, Some("every"), msg);
                None
            }
            (Some(every), None) => {
                let d = self.parse_text(every, ctx, "every", "1m", |s| {
                    let d = parse_duration(s)?;
                    if d < MIN_EVERY {
                        return Err(ValueError(format!(
                            "the interval {} is too short: the minimum is 1s",
                            humantime::format_duration(d)
                        )));
                    }
                    DurationRange::EVERY.parse("every", s)
                })?;
                Some(Schedule::Every(d))
            }
            (None, Some(cron)) => {
                let parsed = self.cron(cron, ctx)?;
                Some(Schedule::Cron(
                    cron.get_ref().trim().to_string(),
                    Box::new(parsed),
                ))
            }
        }
    }

    /// The check's allow list: patterns parsed, `{target}` expanded for each
    /// target, each pattern checked against the ceiling, duplicates dropped.
    pub(super) fn allow(
        &mut self,
        raw: Option<&SpannedList>,
        targets: &[Spanned<String>],
        ceiling: Option<&AllowList>,
        ctx: Option<&str>,
    ) -> AllowList {
        let mut patterns: Vec<AllowPattern> = Vec::new();
        let mut expanded = false;
        for entry in raw.iter().flat_map(|l| l.get_ref()) {
            let is_placeholder = entry.get_ref().trim() == TARGET_PLACEHOLDER;
            if is_placeholder && targets.is_empty() {
                let msg = "`{target}` stands for each target's scheme://host:port, \
                           but the check has no `targets`, so it allows nothing"
                    .to_string();
                self.warn(entry.span(), ctx, Some("allow"), msg);
            }
            let texts: Vec<&str> = targets.iter().map(|t| t.get_ref().as_str()).collect();
            for (target, pattern) in expand_entry(entry.get_ref(), &texts) {
                match (pattern, target) {
                    (Ok(p), t) => self.admit(p, entry.span(), t, ceiling, ctx, &mut patterns),
                    (Err(e), None) => self.error(entry.span(), ctx, Some("allow"), e),
                    // Report a bad target once, even if `{target}` is repeated.
                    (Err(e), Some(t)) if !expanded => {
                        let span = targets
                            .iter()
                            .find(|s| s.get_ref() == t)
                            .map_or(entry.span(), |s| s.span());
                        self.error(span, ctx, Some("targets"), e)
                    }
                    (Err(_), Some(_)) => {}
                }
            }
            expanded |= is_placeholder;
        }
        AllowList::from(patterns)
    }

    pub(super) fn admit(
        &mut self,
        pattern: AllowPattern,
        span: Range<usize>,
        target: Option<&str>,
        ceiling: Option<&AllowList>,
        ctx: Option<&str>,
        patterns: &mut Vec<AllowPattern>,
    ) {
        if let Some(Err(e)) = ceiling.map(|c| c.covers(&pattern)) {
            let msg = match target {
                Some(t) => format!("{e} (from `{{target}}` for target {t:?})"),
                None => e.to_string(),
            };
            self.error(span, ctx, Some("allow"), msg);
            return;
        }
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }

    /// A check's `secrets` and its flattened `config`, each
    /// `${secret.x}` in the config checked against the secrets granted
    /// (errors name the table `table`).
    pub(super) fn secrets_and_config(
        &mut self,
        raw: &RawCheck,
        table: &[String],
        ctx: Option<&str>,
    ) -> (Secrets, FlatConfig) {
        let secrets = self.secrets(raw, ctx);
        let config = raw
            .config
            .as_ref()
            .map(|t| flatten_config(t.get_ref()))
            .unwrap_or_default();
        let span = raw.config.as_ref().map(Spanned::span);
        self.config_places(table, &config, span.clone(), ctx);
        self.secret_references(table, &config, &secrets, span, ctx);
        (secrets, config)
    }

    /// Remember where the table and each key of `config` are written (see
    /// [`Config::config_places`](crate::config::Config::config_places)).
    fn config_places(
        &mut self,
        table: &[String],
        config: &[(String, String)],
        table_span: Option<Range<usize>>,
        ctx: Option<&str>,
    ) {
        let at_table = table_span
            .clone()
            .or_else(|| {
                let path: Vec<&str> = table.iter().map(String::as_str).collect();
                span_of(self.doc, &path)
            })
            .unwrap_or(0..0);
        let mut prefix = table.join(".");
        prefix.push_str(".config");
        let place = self.place(at_table.start, ctx, "config");
        self.config_places.push((prefix.clone(), place));
        for (key, _) in config {
            let mut path: Vec<&str> = table.iter().map(String::as_str).collect();
            path.push("config");
            path.extend(key.split('.'));
            let span = span_of(self.doc, &path).unwrap_or(at_table.clone());
            let place = self.place(span.start, ctx, &format!("config.{key}"));
            self.config_places.push((format!("{prefix}.{key}"), place));
        }
    }

    pub(super) fn secrets(
        &mut self,
        raw: &RawCheck,
        ctx: Option<&str>,
    ) -> Vec<(String, SecretSource)> {
        let mut secrets = Vec::new();
        for (name, source) in raw.secrets.iter().flatten() {
            let key = format!("secrets.{}", name.get_ref());
            if !is_secret_name(name.get_ref()) {
                let msg = format!(
                    "invalid secret name {:?}: use letters, digits, `-` and `_`",
                    name.get_ref()
                );
                self.error(name.span(), ctx, Some(&key), msg);
                continue;
            }
            match source.get_ref().parse::<SecretSource>() {
                Ok(SecretSource::File(path)) => {
                    let path = self.resolve(&path.to_string_lossy());
                    secrets.push((name.get_ref().clone(), SecretSource::File(path)));
                }
                Ok(s) => secrets.push((name.get_ref().clone(), s)),
                Err(e) => self.error(source.span(), ctx, Some(&key), e.0),
            }
        }
        secrets
    }

    /// Every `{{secret.NAME}}` in the check's configuration must name a
    /// granted secret: otherwise the check would get the placeholder, or
    /// fail, at run time.
    pub(super) fn secret_references(
        &mut self,
        table: &[String],
        config: &[(String, String)],
        secrets: &[(String, SecretSource)],
        table_span: Option<Range<usize>>,
        ctx: Option<&str>,
    ) {
        for (key, value) in config {
            for name in secret_references(value) {
                if secrets.iter().any(|(granted, _)| granted == name) {
                    continue;
                }
                let mut path: Vec<&str> = table.iter().map(String::as_str).collect();
                path.push("config");
                path.extend(key.split('.'));
                let span = span_of(self.doc, &path)
                    .or(table_span.clone())
                    .unwrap_or(0..0);
                let msg = format!(
                    "refers to {{{{secret.{name}}}}}, but no secret {name:?} is granted: \
                     add it under [check.secrets], e.g. {name} = \"env:VARIABLE\""
                );
                self.error(span, ctx, Some(&format!("config.{key}")), msg);
            }
        }
    }
}

/// Parse a `cpu` limit: a [duration](parse_duration) in the range of a
/// `timeout` (greater than zero, at most 24h). Enforced to within one epoch
/// tick (10 ms).
pub(super) fn parse_cpu(s: &str) -> Result<Duration, ValueError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(ValueError(format!(
            "cpu {s:?} must be greater than zero, e.g. \"2s\" (leave it out for no CPU limit)"
        )));
    }
    DurationRange::TIMEOUT.parse("cpu", s)
}
