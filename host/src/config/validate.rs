//! Stage two: check every raw value and build the [`Config`] model. All
//! problems are collected (not just the first), each pointing at its key.

use crate::config::secret_references;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::DeTable;

use super::error::{ConfigError, Diagnostic, Severity, Source, check_label, span_of};
use super::model::{
    Alerting, CheckSpec, ComponentRef, Config, Global, Limits, Maintenance, Schedule, Window,
};
use super::raw::{
    RawAlerts, RawCheck, RawConfig, RawDefaults, RawGlobal, RawMaintenance, SpannedList,
};
use super::values::{
    DurationRange, MIN_EVERY, SecretSource, ValueError, flatten_config, is_secret_name,
    parse_component_size, parse_duration, parse_memory,
};
use crate::policy::{AllowList, AllowPattern, TARGET_PLACEHOLDER, expand_entry};

/// Turn the raw file into the model, or every problem found.
pub(super) fn validate(
    raw: RawConfig,
    src: &Source<'_>,
    doc: &DeTable<'_>,
) -> Result<Config, ConfigError> {
    let base = src.file.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut v = Validator {
        src,
        doc,
        base,
        errors: Vec::new(),
        warnings: Vec::new(),
        line_starts: std::iter::once(0)
            .chain(src.text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        component_keys: Vec::new(),
    };
    let global = v.global(raw.global);
    let defaults = v.defaults(raw.defaults);
    if raw.check.is_empty() && raw.restore.is_empty() {
        v.warn(
            0..0,
            None,
            None,
            "no [[check]] is defined: there is nothing to run".to_string(),
        );
    }
    let mut seen = HashMap::new();
    let checks: Vec<Option<CheckSpec>> = raw
        .check
        .into_iter()
        .enumerate()
        .map(|(i, check)| {
            v.check(
                i,
                check,
                &defaults,
                global.allow_ceiling.as_ref(),
                &mut seen,
            )
        })
        .collect();
    let by_position = |d: &Diagnostic| (d.line, d.column);
    let checks: Vec<CheckSpec> = checks.into_iter().flatten().collect();
    let alerts = v.alerts(raw.alerts);
    let maintenance: Vec<Maintenance> = raw
        .maintenance
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| v.maintenance(i, m, &checks))
        .collect();
    v.refuse_without_restore_feature(&raw.restore, raw.audit.as_ref());
    let audit = v.audit(raw.audit);
    let restores: Vec<_> = raw
        .restore
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            v.restore(
                i,
                r,
                &defaults,
                global.allow_ceiling.as_ref(),
                audit.is_some(),
                &mut seen,
            )
        })
        .collect();
    if !v.errors.is_empty() {
        v.errors.sort_by_key(by_position);
        return Err(ConfigError::Invalid(v.errors));
    }
    v.warnings.sort_by_key(by_position);
    Ok(Config {
        source: src.file.to_path_buf(),
        global,
        defaults,
        checks,
        alerts,
        maintenance,
        restores,
        audit,
        warnings: v.warnings,
        component_keys: v.component_keys,
    })
}

mod restore;

struct Validator<'a> {
    src: &'a Source<'a>,
    doc: &'a DeTable<'a>,
    /// The configuration file's directory: relative paths start here.
    base: PathBuf,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Byte offset of each line's start, to place many keys cheaply.
    line_starts: Vec<usize>,
    /// See [`Config::component_keys`].
    component_keys: Vec<(ComponentRef, Diagnostic)>,
}

const GLOBAL: Option<&str> = Some("[global]");
/// A cron expression must match at least once this far ahead (5 years:
/// every date, 29 February included, comes round within it).
const CRON_HORIZON_DAYS: i64 = 5 * 366;
const DEFAULTS: Option<&str> = Some("[defaults]");

impl Validator<'_> {
    /// In a build without the `restore` feature (an edge daemon), every
    /// `[[restore]]` and `[audit]` is an error naming its line: the daemon
    /// could not run them.
    fn refuse_without_restore_feature(
        &mut self,
        restores: &[Spanned<super::raw::RawRestore>],
        audit: Option<&Spanned<super::raw::RawAudit>>,
    ) {
        if cfg!(feature = "restore") {
            return;
        }
        const WHY: &str = "this vantage was built without restore support \
                           (cargo feature `restore`, on by default): use a full build";
        for r in restores {
            self.error(r.span(), None, Some("restore"), WHY.to_string());
        }
        if let Some(a) = audit {
            self.error(a.span(), None, Some("audit"), WHY.to_string());
        }
    }

    fn error(
        &mut self,
        span: Range<usize>,
        context: Option<&str>,
        key: Option<&str>,
        message: String,
    ) {
        let d = self
            .src
            .diagnostic(span, Severity::Error, context, key, message);
        self.errors.push(d);
    }

    fn warn(
        &mut self,
        span: Range<usize>,
        context: Option<&str>,
        key: Option<&str>,
        message: String,
    ) {
        let d = self
            .src
            .diagnostic(span, Severity::Warning, context, key, message);
        self.warnings.push(d);
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// Parse a value written as a string with a unit (`"10s"`, `"64MiB"`).
    fn parse_text<T>(
        &mut self,
        value: &Spanned<toml::Value>,
        context: Option<&str>,
        key: &str,
        example: &str,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        let Some(text) = value.get_ref().as_str() else {
            let found = value.get_ref();
            self.error(
                value.span(),
                context,
                Some(key),
                format!(
                    "expected a string with a unit, like {key} = \"{example}\"; found {} {found}",
                    found.type_str()
                ),
            );
            return None;
        };
        match parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(value.span(), context, Some(key), e.0);
                None
            }
        }
    }

    /// Parse a duration written as a string with a unit, within `range`.
    fn duration(
        &mut self,
        value: &Spanned<toml::Value>,
        context: Option<&str>,
        key: &str,
        example: &str,
        range: DurationRange,
    ) -> Option<Duration> {
        self.parse_text(value, context, key, example, |s| range.parse(key, s))
    }

    fn fuel(&mut self, fuel: &Spanned<u64>, context: Option<&str>) -> Option<u64> {
        if *fuel.get_ref() == 0 {
            self.error(
                fuel.span(),
                context,
                Some("fuel"),
                "fuel must be at least 1; leave `fuel` out for no instruction budget".to_string(),
            );
            return None;
        }
        Some(*fuel.get_ref())
    }

    fn global(&mut self, raw: Option<Spanned<RawGlobal>>) -> Global {
        let mut global = Global::default();
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return global;
        };
        if let Some(location) = raw.location {
            let text = location.get_ref();
            if text.trim().is_empty() {
                let msg = "the location is empty: write a label like \"eu-west-1\"".to_string();
                self.error(location.span(), GLOBAL, Some("location"), msg);
            } else if text.chars().any(char::is_control) {
                let msg = format!("location {text:?} contains control characters");
                self.error(location.span(), GLOBAL, Some("location"), msg);
            } else {
                global.location = text.clone();
            }
        }
        if let Some(dir) = raw.data_dir {
            if dir.get_ref().trim().is_empty() {
                let msg = "the path is empty: write a directory, or leave `data_dir` out for the OS default"
                    .to_string();
                self.error(dir.span(), GLOBAL, Some("data_dir"), msg);
            } else {
                global.data_dir = Some(self.resolve(dir.get_ref()));
            }
        }
        if let Some(list) = raw.allow_ceiling {
            let errors_before = self.errors.len();
            let mut patterns = Vec::new();
            for entry in list.get_ref() {
                if entry.get_ref().trim() == TARGET_PLACEHOLDER {
                    let msg = "`{target}` only works in a check's `allow` list: \
                               the ceiling must name hosts, e.g. \"https://*\""
                        .to_string();
                    self.error(entry.span(), GLOBAL, Some("allow_ceiling"), msg);
                    continue;
                }
                match entry.get_ref().parse::<AllowPattern>() {
                    Ok(p) => patterns.push(p),
                    Err(e) => {
                        self.error(entry.span(), GLOBAL, Some("allow_ceiling"), e.to_string())
                    }
                }
            }
            // An invalid ceiling is reported once, here, not again per check.
            if self.errors.len() == errors_before {
                global.allow_ceiling = Some(AllowList::from(patterns));
            }
        }
        if let Some(listen) = raw.listen {
            match listen.get_ref().parse::<std::net::SocketAddr>() {
                Ok(addr) => global.listen = Some(addr),
                Err(_) => {
                    let msg = format!(
                        "invalid listen address {:?}: write IP:PORT, e.g. \"127.0.0.1:9470\"",
                        listen.get_ref()
                    );
                    self.error(listen.span(), GLOBAL, Some("listen"), msg);
                }
            }
        }
        if let Some(public) = raw.public_url {
            match url::Url::parse(public.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {
                    global.public_url = Some(public.get_ref().trim_end_matches('/').to_string())
                }
                _ => {
                    let msg = format!(
                        "invalid public_url {:?}: write an http(s) URL, e.g. \"https://status.example.com\"",
                        public.get_ref()
                    );
                    self.error(public.span(), GLOBAL, Some("public_url"), msg);
                }
            }
        }
        if let Some(c) = raw.concurrency {
            match usize::try_from(*c.get_ref()) {
                Ok(n) if (1..=100_000).contains(&n) => global.concurrency = n,
                _ => {
                    let msg = "concurrency must be between 1 and 100000".to_string();
                    self.error(c.span(), GLOBAL, Some("concurrency"), msg);
                }
            }
        }
        if let Some(age) = &raw.history_max_age {
            global.history_max_age = self
                .duration(
                    age,
                    GLOBAL,
                    "history_max_age",
                    "30d",
                    DurationRange::HISTORY_MAX_AGE,
                )
                .unwrap_or(global.history_max_age);
        }
        if let Some(n) = raw.history_max_runs {
            if *n.get_ref() == 0 {
                let msg = "history_max_runs must be at least 1".to_string();
                self.error(n.span(), GLOBAL, Some("history_max_runs"), msg);
            } else {
                global.history_max_runs = *n.get_ref();
            }
        }
        if let Some(m) = &raw.max_component_size {
            global.max_component_size = self
                .parse_text(
                    m,
                    GLOBAL,
                    "max_component_size",
                    "64MiB",
                    parse_component_size,
                )
                .unwrap_or(global.max_component_size);
        }
        if let Some(g) = &raw.shutdown_grace {
            global.shutdown_grace = self
                .duration(
                    g,
                    GLOBAL,
                    "shutdown_grace",
                    "30s",
                    DurationRange::SHUTDOWN_GRACE,
                )
                .unwrap_or(global.shutdown_grace);
        }
        global
    }

    /// `[alerts]`.
    fn alerts(&mut self, raw: Option<Spanned<RawAlerts>>) -> Alerting {
        const ALERTS: Option<&str> = Some("[alerts]");
        let mut alerting = Alerting::default();
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return alerting;
        };
        let urls = |list: &Option<SpannedList>, key: &str, v: &mut Self| -> Vec<url::Url> {
            let mut out = Vec::new();
            for entry in list.iter().flat_map(|l| l.get_ref()) {
                match url::Url::parse(entry.get_ref().trim()) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                        out.push(u)
                    }
                    _ => {
                        let msg = format!(
                            "invalid URL {:?}: write an http(s) URL, e.g. \"http://127.0.0.1:9093\"",
                            entry.get_ref()
                        );
                        v.error(entry.span(), ALERTS, Some(key), msg);
                    }
                }
            }
            out
        };
        alerting.alertmanagers = urls(&raw.alertmanager, "alertmanager", self);
        alerting.webhooks = urls(&raw.webhooks, "webhooks", self);
        if let Some(r) = &raw.resend {
            alerting.resend = self
                .duration(r, ALERTS, "resend", "1m", DurationRange::RESEND)
                .unwrap_or(alerting.resend);
        }
        alerting
    }

    /// One `[[maintenance]]`; `None` if it has errors (already recorded).
    fn maintenance(
        &mut self,
        index: usize,
        raw: Spanned<RawMaintenance>,
        checks: &[CheckSpec],
    ) -> Option<Maintenance> {
        let header = raw.span();
        let raw = raw.into_inner();
        let label = match &raw.name {
            Some(n) => format!("maintenance {:?}", n.get_ref()),
            None => format!("maintenance #{}", index + 1),
        };
        let ctx = Some(label.as_str());
        let errors_before = self.errors.len();
        let name = match &raw.name {
            Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
            Some(n) => {
                self.error(n.span(), ctx, Some("name"), "the name is empty".to_string());
                String::new()
            }
            None => {
                let msg = "missing: every [[maintenance]] needs a name, e.g. name = \"db-upgrade\""
                    .to_string();
                self.error(header.clone(), ctx, Some("name"), msg);
                String::new()
            }
        };
        let mut covered = Vec::new();
        for c in raw.checks.iter().flat_map(|l| l.get_ref()) {
            if checks.iter().any(|spec| &spec.name == c.get_ref()) {
                covered.push(c.get_ref().clone());
            } else {
                let msg = format!("no check named {:?} is configured", c.get_ref());
                self.error(c.span(), ctx, Some("checks"), msg);
            }
        }
        let timezone = self.timezone(raw.timezone.as_ref(), ctx);
        let time = |v: &mut Self, value: &Spanned<String>, key: &str| {
            match chrono::DateTime::parse_from_rfc3339(value.get_ref().trim()) {
                Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                Err(e) => {
                    let msg = format!(
                        "invalid time {:?}: {e}; write RFC 3339, e.g. \"2026-12-01T02:00:00Z\"",
                        value.get_ref()
                    );
                    v.error(value.span(), ctx, Some(key), msg);
                    None
                }
            }
        };
        let window = match (&raw.start, &raw.end, &raw.cron, &raw.duration) {
            (Some(start), Some(end), None, None) => {
                let s = time(self, start, "start");
                let e = time(self, end, "end");
                match (s, e) {
                    (Some(s), Some(e)) if s < e => Some(Window::Once { start: s, end: e }),
                    (Some(_), Some(_)) => {
                        let msg = "the window ends before it starts".to_string();
                        self.error(end.span(), ctx, Some("end"), msg);
                        None
                    }
                    _ => None,
                }
            }
            (None, None, Some(cron), Some(duration)) => {
                let parsed = self.cron(cron, ctx);
                let d = self.duration(
                    duration,
                    ctx,
                    "duration",
                    "2h",
                    DurationRange::WINDOW_DURATION,
                );
                match (parsed, d, timezone) {
                    (Some(c), Some(d), Some(tz)) => Some(Window::Recurring {
                        expr: cron.get_ref().trim().to_string(),
                        cron: Box::new(c),
                        duration: d,
                        timezone: tz,
                    }),
                    _ => None,
                }
            }
            _ => {
                let msg = "write either start and end (a one-off window) or cron and duration \
                           (a recurring one)"
                    .to_string();
                self.error(header, ctx, Some("start"), msg);
                None
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Maintenance {
            name,
            checks: covered,
            window: window?,
        })
    }

    /// An IANA time zone name; UTC when absent.
    fn timezone(
        &mut self,
        raw: Option<&Spanned<String>>,
        ctx: Option<&str>,
    ) -> Option<chrono_tz::Tz> {
        let Some(tz) = raw else {
            return Some(chrono_tz::Tz::UTC);
        };
        match tz.get_ref().trim().parse::<chrono_tz::Tz>() {
            Ok(t) => Some(t),
            Err(_) => {
                let msg = format!(
                    "unknown time zone {:?}: write an IANA name, e.g. \"Europe/Berlin\" or \"UTC\"",
                    tz.get_ref()
                );
                self.error(tz.span(), ctx, Some("timezone"), msg);
                None
            }
        }
    }

    /// A cron expression, with a message showing the form on error.
    fn cron(&mut self, cron: &Spanned<String>, ctx: Option<&str>) -> Option<croner::Cron> {
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

    /// A count that must be within `range`.
    fn count(
        &mut self,
        raw: Option<&Spanned<u64>>,
        ctx: Option<&str>,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
        default: u32,
    ) -> u32 {
        let Some(raw) = raw else { return default };
        match u32::try_from(*raw.get_ref()) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                let msg = format!(
                    "{key} must be between {} and {}",
                    range.start(),
                    range.end()
                );
                self.error(raw.span(), ctx, Some(key), msg);
                default
            }
        }
    }

    fn defaults(&mut self, raw: Option<Spanned<RawDefaults>>) -> Limits {
        let mut limits = Limits::default();
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return limits;
        };
        if let Some(t) = &raw.timeout {
            limits.timeout = self
                .duration(t, DEFAULTS, "timeout", "10s", DurationRange::TIMEOUT)
                .unwrap_or(limits.timeout);
        }
        if let Some(m) = &raw.memory {
            limits.memory = self
                .parse_text(m, DEFAULTS, "memory", "64MiB", parse_memory)
                .unwrap_or(limits.memory);
        }
        if let Some(f) = &raw.fuel {
            limits.fuel = self.fuel(f, DEFAULTS);
        }
        if let Some(c) = &raw.cpu {
            limits.cpu = self.parse_text(c, DEFAULTS, "cpu", "2s", parse_cpu);
        }
        self.cpu_within_timeout(raw.cpu.as_ref(), &limits, DEFAULTS);
        limits
    }

    /// One `[[check]]`; `None` if it has errors (already recorded).
    fn check(
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

        let mut targets = Vec::new();
        for t in raw.targets.iter().flat_map(|l| l.get_ref()) {
            if t.get_ref().trim().is_empty() {
                let msg = "a target is empty: write a URL like \"https://api.example.com/healthz\""
                    .to_string();
                self.error(t.span(), ctx, Some("targets"), msg);
            }
            targets.push(t.get_ref().clone());
        }
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
        let severity = match &raw.severity {
            Some(s) => {
                let text = s.get_ref().trim();
                if text.is_empty()
                    || !text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    let msg = format!(
                        "invalid severity {:?}: write a word like \"critical\" or \"warning\"",
                        s.get_ref()
                    );
                    self.error(s.span(), ctx, Some("severity"), msg);
                }
                text.to_string()
            }
            None => "critical".to_string(),
        };

        let secrets = self.secrets(&raw, ctx);
        let config = raw
            .config
            .as_ref()
            .map(|t| flatten_config(t.get_ref()))
            .unwrap_or_default();
        self.secret_references(
            &["check".to_string(), index.to_string()],
            &config,
            &secrets,
            raw.config.as_ref().map(Spanned::span),
            ctx,
        );

        // Warnings: configurations that work, but probably not as meant.
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
            (&schedule, jitter, &raw.jitter)
            && j >= *every
        {
            let msg = format!(
                "jitter ({}) is not shorter than the interval ({})",
                humantime::format_duration(j),
                humantime::format_duration(*every)
            );
            self.warn(raw_j.span(), ctx, Some("jitter"), msg);
        }
        if let (Some(Schedule::Every(every)), Some(raw_t)) = (&schedule, &raw.timeout)
            && limits.timeout > *every
        {
            let msg = format!(
                "timeout ({}) is longer than the interval ({}): runs may be skipped",
                humantime::format_duration(limits.timeout),
                humantime::format_duration(*every)
            );
            self.warn(raw_t.span(), ctx, Some("timeout"), msg);
        }

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

    /// A check's `timeout`, `memory`, `fuel` and `cpu` over `defaults`: the
    /// one parser of limits, for checks and restore checks alike.
    fn limits(&mut self, raw: &RawCheck, defaults: &Limits, ctx: Option<&str>) -> Limits {
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
    fn cpu_within_timeout(
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

    fn check_name(
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
    fn unique_name(
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
                if what == "check" {
                    "[[check]]"
                } else {
                    "[[restore]]"
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

    fn component(
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

    /// A diagnostic with an empty message at byte `offset`, for `key`: found
    /// by binary search in the line index, since one is made per check.
    fn place(&self, offset: usize, context: Option<&str>, key: &str) -> Diagnostic {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .src
            .text
            .get(start..offset)
            .map_or(1, |t| t.chars().count() + 1);
        Diagnostic {
            file: self.src.file.to_path_buf(),
            line: line.max(1),
            column,
            context: context.map(str::to_string),
            key: Some(key.to_string()),
            message: String::new(),
            severity: Severity::Error,
        }
    }

    fn schedule(
        &mut self,
        raw: &RawCheck,
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Option<Schedule> {
        self.schedule_of(raw.every.as_ref(), raw.cron.as_ref(), header, ctx)
    }

    /// Exactly one of `every` and `cron`.
    fn schedule_of(
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
    fn allow(
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

    fn admit(
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

    fn secrets(&mut self, raw: &RawCheck, ctx: Option<&str>) -> Vec<(String, SecretSource)> {
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
    fn secret_references(
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
fn parse_cpu(s: &str) -> Result<Duration, ValueError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(ValueError(format!(
            "cpu {s:?} must be greater than zero, e.g. \"2s\" (leave it out for no CPU limit)"
        )));
    }
    DurationRange::TIMEOUT.parse("cpu", s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secret_references() {
        assert_eq!(secret_references("Bearer {{secret.token}}"), ["token"]);
        assert_eq!(secret_references("{{secret.a}}:{{secret.b}}"), ["a", "b"]);
        assert!(secret_references("{{secret.unclosed").is_empty());
        assert!(secret_references("plain").is_empty());
    }
}
