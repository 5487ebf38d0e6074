//! The `log` interface: lines a check writes, captured per run (bounded) and
//! forwarded to `tracing` with the check's name.

use serde::Serialize;
use wasmtime::component::{HasSelf, Linker};

use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::log as wit;

/// Most lines kept per run.
pub const MAX_LINES: usize = 256;
/// Most bytes of messages kept per run.
pub const MAX_BYTES: usize = 64 * 1024;

/// Severity of a captured line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Something unexpected but not fatal.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// Lowercase name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

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

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// Per-run log capture.
#[derive(Debug)]
pub struct LogState {
    check: String,
    lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
}

impl LogState {
    /// An empty capture for the check called `check`.
    pub fn new(check: &str) -> Self {
        LogState {
            check: check.to_string(),
            lines: Vec::new(),
            bytes: 0,
            dropped: 0,
        }
    }

    /// Record a line (from the guest or from the host on the guest's behalf),
    /// forwarding it to `tracing`.
    pub fn push(&mut self, level: Level, message: &str) {
        let check = self.check.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "vantage::guest", check, "{message}"),
            Level::Debug => tracing::debug!(target: "vantage::guest", check, "{message}"),
            Level::Info => tracing::info!(target: "vantage::guest", check, "{message}"),
            Level::Warn => tracing::warn!(target: "vantage::guest", check, "{message}"),
            Level::Error => tracing::error!(target: "vantage::guest", check, "{message}"),
        }
        if self.lines.len() >= MAX_LINES || self.bytes + message.len() > MAX_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level,
            message: message.to_string(),
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
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<RunState, HasSelf<LogState>>(linker, |s| &mut s.caps.log)
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
