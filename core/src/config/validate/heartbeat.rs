//! Stage two for `[[heartbeat]]`.

use std::collections::HashMap;
use std::time::Duration;

use serde_spanned::Spanned;

use super::Validator;
use crate::config::SecretSource;
use crate::config::heartbeat::{Expect, HeartbeatConfig, RawHeartbeat};
use crate::config::values::DurationRange;

/// `period` and `grace`: 1s to 366d.
const PERIOD: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(366 * 86_400));

impl Validator<'_> {
    /// One `[[heartbeat]]`; `None` if it has errors (already recorded).
    pub(super) fn heartbeat(
        &mut self,
        i: usize,
        raw: Spanned<RawHeartbeat>,
        seen: &mut HashMap<String, usize>,
    ) -> Option<HeartbeatConfig> {
        let span = raw.span();
        let raw = raw.into_inner();
        let context = match &raw.name {
            Some(n) => format!("[[heartbeat]] {:?}", n.get_ref()),
            None => format!("[[heartbeat]] #{}", i + 1),
        };
        let ctx = Some(context.as_str());
        let name = self.unique_name(raw.name.as_ref(), "heartbeat", span.clone(), ctx, seen);
        let expect = match (&raw.period, &raw.cron) {
            (Some(_), Some(cron)) => {
                self.error(
                    cron.span(),
                    ctx,
                    Some("cron"),
                    "give period or cron, not both".to_string(),
                );
                None
            }
            (Some(p), None) => self
                .duration(p, ctx, "period", "1d", PERIOD)
                .map(Expect::Period),
            (None, Some(cron)) => {
                let parsed = self.cron(cron, ctx);
                let tz = self.timezone(raw.timezone.as_ref(), ctx);
                match (parsed, tz) {
                    (Some(c), Some(tz)) => Some(Expect::Cron(
                        cron.get_ref().trim().to_string(),
                        Box::new(c),
                        tz,
                    )),
                    _ => None,
                }
            }
            (None, None) => {
                self.error(
                    span.clone(),
                    ctx,
                    Some("period"),
                    "missing: when pings are expected, period = \"1d\" or cron = \"0 3 * * *\""
                        .to_string(),
                );
                None
            }
        };
        if raw.timezone.is_some() && raw.cron.is_none() {
            self.error(
                raw.timezone
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or(span.clone()),
                ctx,
                Some("timezone"),
                "timezone applies to cron only".to_string(),
            );
        }
        let grace = match &raw.grace {
            Some(g) => self.duration(g, ctx, "grace", "1h", PERIOD),
            None => Some(Duration::from_secs(3600)),
        };
        let token = match &raw.token {
            None => {
                self.error(
                    span,
                    ctx,
                    Some("token"),
                    "missing: token, a secret source (env:NAME or file:PATH) holding at least 22 \
                     random characters"
                        .to_string(),
                );
                None
            }
            Some(t) => match t.get_ref().parse::<SecretSource>() {
                Ok(SecretSource::File(p)) => {
                    Some(SecretSource::File(self.resolve(&p.to_string_lossy())))
                }
                Ok(s) => Some(s),
                Err(e) => {
                    self.error(t.span(), ctx, Some("token"), e.0);
                    None
                }
            },
        };
        let severity = self.severity(raw.severity.as_ref(), ctx);
        Some(HeartbeatConfig {
            name: name?,
            expect: expect?,
            grace: grace?,
            token: token?,
            severity,
        })
    }
}
