//! Stage two for `[audit]`: the bucket, signing keys, retention and
//! encryption of the audit log.

use serde_spanned::Spanned;

use super::Validator;
use crate::config::raw::RawAudit;
use crate::config::restore::AuditConfig;
use crate::config::s3::{DEFAULT_PREFIX, LockMode, Retention, Sse, check_endpoint};
use crate::config::values::{DurationRange, SecretSource};

/// Where `[audit]` errors point.
const AUDIT: Option<&str> = Some("[audit]");

impl Validator<'_> {
    /// `[audit]`; `None` when absent or invalid (errors recorded).
    pub(super) fn audit(&mut self, raw: Option<Spanned<RawAudit>>) -> Option<AuditConfig> {
        let raw = raw?;
        let header = raw.span();
        let raw = raw.into_inner();
        let errors_before = self.errors.len();
        let bucket = match &raw.bucket {
            Some(b) if !b.get_ref().trim().is_empty() => Some(b.get_ref().trim().to_string()),
            Some(b) => {
                let msg = "the bucket is empty".to_string();
                self.error(b.span(), AUDIT, Some("bucket"), msg);
                None
            }
            None => {
                let msg = "missing: the audit log needs a bucket, e.g. bucket = \"vantage-audit\""
                    .to_string();
                self.error(header.clone(), AUDIT, Some("bucket"), msg);
                None
            }
        };
        let signing_key = match &raw.signing_key {
            Some(k) => self.key_source(k, "signing_key"),
            None => {
                let msg =
                    "missing: records are signed; set signing_key = \"env:VANTAGE_AUDIT_KEY\" \
                           or \"file:/run/secrets/audit-key\" (an Ed25519 seed, hex or base64)"
                        .to_string();
                self.error(header.clone(), AUDIT, Some("signing_key"), msg);
                None
            }
        };
        let endpoint = raw.endpoint.as_ref().and_then(|e| {
            let text = e.get_ref().trim().to_string();
            match check_endpoint(&text) {
                Ok(()) => Some(text),
                Err(err) => {
                    self.error(e.span(), AUDIT, Some("endpoint"), format!("{err:#}"));
                    None
                }
            }
        });
        let retention = self.retention(&raw);
        let sse = self.sse(&raw);
        let previous_signing_key = raw
            .previous_signing_key
            .as_ref()
            .and_then(|k| self.key_source(k, "previous_signing_key"));
        let checkpoint_every = raw
            .checkpoint_every
            .as_ref()
            .and_then(|d| {
                self.duration(
                    d,
                    AUDIT,
                    "checkpoint_every",
                    "1h",
                    DurationRange::CHECKPOINT_EVERY,
                )
            })
            .unwrap_or(crate::config::s3::DEFAULT_CHECKPOINT_EVERY);
        let prefix = match &raw.prefix {
            Some(p) => {
                let mut text = p.get_ref().trim().trim_start_matches('/').to_string();
                if !text.is_empty() && !text.ends_with('/') {
                    text.push('/');
                }
                text
            }
            None => DEFAULT_PREFIX.to_string(),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(AuditConfig {
            bucket: bucket?,
            prefix,
            path_style: raw
                .path_style
                .map(Spanned::into_inner)
                .unwrap_or(endpoint.is_some()),
            endpoint,
            region: raw.region.map(|r| r.into_inner().trim().to_string()),
            signing_key: signing_key?,
            retention,
            sse,
            spool_dir: raw.spool_dir.map(|d| self.resolve(d.get_ref())),
            previous_signing_key,
            checkpoint_every,
        })
    }

    /// `signing_key` / `previous_signing_key`: where an Ed25519 seed is
    /// read (a relative file path starts at the configuration's folder).
    fn key_source(&mut self, key: &Spanned<String>, name: &str) -> Option<SecretSource> {
        match key.get_ref().parse::<SecretSource>() {
            Ok(SecretSource::File(p)) => {
                Some(SecretSource::File(self.resolve(&p.to_string_lossy())))
            }
            Ok(s) => Some(s),
            Err(e) => {
                self.error(key.span(), AUDIT, Some(name), e.0);
                None
            }
        }
    }

    /// `lock_mode` and `lock_days`: Object Lock retention, both or neither.
    fn retention(&mut self, raw: &RawAudit) -> Option<Retention> {
        match (&raw.lock_mode, &raw.lock_days) {
            (None, None) => None,
            (Some(mode), days) => {
                let mode_value = match mode.get_ref().trim() {
                    "compliance" => Some(LockMode::Compliance),
                    "governance" => Some(LockMode::Governance),
                    other => {
                        let msg = format!(
                            "invalid lock_mode {other:?}: expected \"compliance\" or \"governance\""
                        );
                        self.error(mode.span(), AUDIT, Some("lock_mode"), msg);
                        None
                    }
                };
                let days_value = match days {
                    Some(d) => match u32::try_from(*d.get_ref()) {
                        Ok(n) if (1..=36_500).contains(&n) => Some(n),
                        _ => {
                            let msg = "lock_days must be between 1 and 36500".to_string();
                            self.error(d.span(), AUDIT, Some("lock_days"), msg);
                            None
                        }
                    },
                    None => {
                        let msg = "lock_mode needs lock_days, e.g. lock_days = 365".to_string();
                        self.error(mode.span(), AUDIT, Some("lock_days"), msg);
                        None
                    }
                };
                match (mode_value, days_value) {
                    (Some(mode), Some(days)) => Some(Retention { mode, days }),
                    _ => None,
                }
            }
            (None, Some(d)) => {
                let msg =
                    "lock_days needs lock_mode = \"compliance\" or \"governance\"".to_string();
                self.error(d.span(), AUDIT, Some("lock_mode"), msg);
                None
            }
        }
    }

    /// `sse` (and `sse_kms_key_id`): server-side encryption.
    fn sse(&mut self, raw: &RawAudit) -> Option<Sse> {
        match &raw.sse {
            None => {
                if let Some(k) = &raw.sse_kms_key_id {
                    let msg = "sse_kms_key_id needs sse = \"kms\"".to_string();
                    self.error(k.span(), AUDIT, Some("sse"), msg);
                }
                None
            }
            Some(s) => match s.get_ref().trim() {
                "s3" => Some(Sse::S3),
                "kms" => Some(Sse::Kms(
                    raw.sse_kms_key_id
                        .as_ref()
                        .map(|k| k.get_ref().trim().to_string()),
                )),
                other => {
                    let msg = format!("invalid sse {other:?}: expected \"s3\" or \"kms\"");
                    self.error(s.span(), AUDIT, Some("sse"), msg);
                    None
                }
            },
        }
    }
}
