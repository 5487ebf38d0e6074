//! Stage two for `[[maintenance]]` windows.

use serde_spanned::Spanned;

use crate::config::model::{CheckSpec, Maintenance, Window};
use crate::config::raw::RawMaintenance;
use crate::config::values::DurationRange;

use super::Validator;

impl Validator<'_> {
    /// One `[[maintenance]]`; `None` if it has errors (already recorded).
    pub(super) fn maintenance(
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
    pub(super) fn timezone(
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
}
