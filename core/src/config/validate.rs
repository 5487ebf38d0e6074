//! Stage two: check every raw value and build the [`Config`] model. All
//! problems are collected (not just the first), each pointing at its key.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::DeTable;

use super::error::{ConfigError, Diagnostic, Severity, Source};
use super::model::{CheckSpec, ComponentRef, Config, Maintenance};
use super::raw::RawConfig;
use super::values::{DurationRange, ValueError};

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
        config_places: Vec::new(),
    };
    let global = v.global(raw.global);
    let defaults = v.defaults(raw.defaults);
    if raw.check.is_empty()
        && raw.restore.is_empty()
        && raw.central.is_none()
        && raw.heartbeat.is_empty()
    {
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
    let registry = v.registry(raw.registry);
    let remote_write = v.remote_writes(raw.remote_write);
    let central = raw.central.and_then(|c| v.central(c));
    let heartbeats = raw
        .heartbeat
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| v.heartbeat(i, h, &mut seen))
        .collect();
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
        config_places: v.config_places,
        registry,
        remote_write,
        central,
        heartbeats,
    })
}

mod audit;
mod check;
mod global;
mod heartbeat;
mod maintenance;
mod registry;
mod remote_write;
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
    /// See [`Config::config_places`].
    config_places: Vec<(String, Diagnostic)>,
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
}
