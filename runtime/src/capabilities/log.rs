//! The `log` interface: lines a check writes, captured per run (bounded) and
//! forwarded to `tracing` with the check's name.

use wasmtime::component::{HasSelf, Linker};

use super::secrets::Revealed;
use crate::bindings::vantage::check::log as wit;
use crate::capabilities::CapabilitiesView;
pub use crate::result::log::{Level, LogLine};

/// Most lines kept per run.
pub const MAX_LINES: usize = 256;
/// Most bytes of messages kept per run.
pub const MAX_BYTES: usize = 64 * 1024;

impl From<wit::Level> for Level {
    fn from(level: wit::Level) -> Self {
        match level {
            wit::Level::Trace => Level::Trace,
            wit::Level::Debug => Level::Debug,
            wit::Level::Info => Level::Info,
            wit::Level::Warn => Level::Warn,
            wit::Level::Error => Level::Error,
        }
    }
}

/// Per-run log capture.
#[derive(Debug)]
pub struct LogState {
    check: String,
    lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
    revealed: Revealed,
}

impl LogState {
    /// An empty capture for the check called `check`.
    pub fn new(check: &str) -> Self {
        LogState {
            check: check.to_string(),
            lines: Vec::new(),
            bytes: 0,
            dropped: 0,
            revealed: Revealed::default(),
        }
    }

    /// Redact the run's revealed secrets from every line before it is
    /// forwarded to the host's log.
    pub fn redacting(mut self, revealed: Revealed) -> Self {
        self.revealed = revealed;
        self
    }

    /// Record a line (from the guest or from the host on the guest's behalf),
    /// forwarding it to `tracing` with the run's secrets redacted. Only the
    /// lines kept are forwarded: a check flooding its log fills neither the
    /// result nor the host's own log beyond [`MAX_LINES`] / [`MAX_BYTES`].
    pub fn push(&mut self, level: Level, message: &str) {
        if self.lines.len() >= MAX_LINES || self.bytes + message.len() > MAX_BYTES {
            if self.dropped == 0 {
                tracing::warn!(
                    target: "vantage::guest",
                    check = self.check.as_str(),
                    "log limit reached ({MAX_LINES} lines / {MAX_BYTES} bytes per run); further lines are dropped"
                );
            }
            self.dropped += 1;
            return;
        }
        let message = self.revealed.redact(message);
        let check = self.check.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "vantage::guest", check, "{message}"),
            Level::Debug => tracing::debug!(target: "vantage::guest", check, "{message}"),
            Level::Info => tracing::info!(target: "vantage::guest", check, "{message}"),
            Level::Warn => tracing::warn!(target: "vantage::guest", check, "{message}"),
            Level::Error => tracing::error!(target: "vantage::guest", check, "{message}"),
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level,
            message: message.into_owned(),
        });
    }

    /// The captured lines, with a final note if some were dropped.
    pub fn finish(mut self) -> Vec<LogLine> {
        if self.dropped > 0 {
            self.lines.push(LogLine {
                level: Level::Warn,
                message: format!(
                    "{} more log lines dropped (limit {MAX_LINES} lines / {MAX_BYTES} bytes per run)",
                    self.dropped
                ),
            });
        }
        self.lines
    }
}

impl wit::Host for LogState {
    async fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        self.push(level.into(), &message);
        Ok(())
    }
}

/// Register the `log` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<LogState>>(linker, |s| &mut s.caps().log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded_and_says_so() {
        let mut log = LogState::new("t");
        for i in 0..(MAX_LINES + 10) {
            log.push(Level::Info, &format!("line {i}"));
        }
        let lines = log.finish();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert!(
            lines
                .last()
                .unwrap()
                .message
                .starts_with("10 more log lines dropped")
        );
    }

    #[test]
    fn revealed_secrets_are_redacted_before_the_line_is_kept_or_forwarded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "hunter2").unwrap();
        let mut secrets = super::super::secrets::SecretsState::new(&[(
            "token".into(),
            crate::config::SecretSource::File(file),
        )]);
        let mut log = LogState::new("t").redacting(secrets.revealed());
        log.push(Level::Info, "before: hunter2");
        secrets.read("token").unwrap();
        log.push(Level::Info, "after: hunter2");
        let lines = log.finish();
        // A value is known to the log once the guest has it.
        assert_eq!(lines[1].message, "after: [redacted]");
    }

    #[test]
    fn byte_cap_applies() {
        let mut log = LogState::new("t");
        let big = "x".repeat(MAX_BYTES - 10);
        log.push(Level::Info, &big);
        log.push(Level::Info, "this one does not fit");
        let lines = log.finish();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].message.len(), MAX_BYTES - 10);
        assert!(lines[1].message.starts_with("1 more log lines dropped"));
    }
}
