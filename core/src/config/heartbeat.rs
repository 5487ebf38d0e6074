//! `[[heartbeat]]`: jobs that must report in (backups, cron jobs, the
//! Velero schedule itself). The job calls `/ping/<token>` when it succeeds
//! (`/start` when it begins, `/fail` or `/<exit code>` when it ends), and the
//! daemon raises an alert when a ping does not come in time.
//!
//! ```toml
//! [[heartbeat]]
//! name = "nightly-backup"
//! cron = "0 3 * * *"          # or period = "1d"
//! timezone = "Europe/Berlin"
//! grace = "1h"
//! token = "env:BACKUP_PING_TOKEN"
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::SecretSource;

/// One `[[heartbeat]]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    /// Its name (unique among checks, restore tests and heartbeats).
    pub name: String,
    /// When pings are expected.
    pub expect: Expect,
    /// How late a ping may be before the heartbeat is down; also how long a
    /// started job may run before it is.
    pub grace: Duration,
    /// Where the ping token is read (at least 22 characters: 128 bits).
    pub token: SecretSource,
    /// The alert severity (`critical` by default).
    pub severity: String,
}

/// When a heartbeat's pings are expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// One ping every period.
    Period(Duration),
    /// One ping per cron slot (in `timezone`); the text as written, the
    /// parsed expression.
    Cron(String, Box<croner::Cron>, chrono_tz::Tz),
}

impl std::fmt::Display for Expect {
    /// `every 1day` or `cron 0 3 * * * (Europe/Berlin)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Period(p) => write!(f, "every {}", humantime::format_duration(*p)),
            Expect::Cron(text, _, tz) => write!(f, "cron {text} ({tz})"),
        }
    }
}

/// The shortest token accepted: 22 characters of base64 are 132 bits.
pub const MIN_TOKEN_CHARS: usize = 22;

/// `[[heartbeat]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeartbeat {
    pub name: Option<Spanned<String>>,
    pub period: Option<Spanned<toml::Value>>,
    pub cron: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub grace: Option<Spanned<toml::Value>>,
    pub token: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
}
