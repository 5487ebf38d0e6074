//! Stage two for `[global]`, `[defaults]` and `[alerts]`.

use serde_spanned::Spanned;

use crate::config::model::{Alerting, Global, Limits};
use crate::config::raw::{RawAlerts, RawDefaults, RawGlobal, SpannedList};
use crate::config::values::{DurationRange, parse_component_size, parse_memory};
use crate::policy::{AllowList, AllowPattern, TARGET_PLACEHOLDER};

use super::check::parse_cpu;
use super::{DEFAULTS, GLOBAL, Validator};

impl Validator<'_> {
    pub(super) fn global(&mut self, raw: Option<Spanned<RawGlobal>>) -> Global {
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
        if let Some(list) = &raw.allow_ceiling {
            global.allow_ceiling = self.allow_ceiling(list);
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

    /// `allow_ceiling`: the patterns no check's allow list may exceed;
    /// `None` when invalid (reported once, here, not again per check).
    fn allow_ceiling(&mut self, list: &SpannedList) -> Option<AllowList> {
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
                Err(e) => self.error(entry.span(), GLOBAL, Some("allow_ceiling"), e.to_string()),
            }
        }
        // An invalid ceiling is reported once, here, not again per check.
        (self.errors.len() == errors_before).then(|| AllowList::from(patterns))
    }

    /// `[alerts]`.
    pub(super) fn alerts(&mut self, raw: Option<Spanned<RawAlerts>>) -> Alerting {
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

    pub(super) fn defaults(&mut self, raw: Option<Spanned<RawDefaults>>) -> Limits {
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
}
