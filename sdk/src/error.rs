//! Errors of host calls, with readable messages, and the error a run
//! returns.

use std::fmt;

use crate::{ConfigError, Outcome};

use crate::bindings::vantage::check::common::NetError as RawNetError;
use crate::bindings::vantage::check::secrets::SecretError as RawSecretError;

/// Why a network call ([`http`](crate::http), [`tls`](crate::tls),
/// [`dns`](crate::dns), [`tcp`](crate::tcp)) did not produce an answer.
///
/// A bad *answer* (HTTP 500, an expired certificate, NXDOMAIN) is data in the
/// call's result, not an error. [`Display`](fmt::Display) gives
/// `<kind>: <detail>`, e.g. `denied: host api.evil.com is not in the allow list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The request itself is malformed (bad URL, bad header name…).
    InvalidRequest(String),
    /// The outbound policy refused the call; the string names the rule.
    Denied(String),
    /// Name resolution failed.
    Dns(String),
    /// The TCP connection could not be established (refused, unreachable).
    Connect(String),
    /// The TLS handshake failed.
    Tls(String),
    /// The call's timeout or the run's deadline expired; the string names the
    /// phase that was running (`resolve`, `connect`, `tls`, `processing`,
    /// `transfer`).
    Timeout(String),
    /// The response body exceeded the allowed size; the number is the limit,
    /// in bytes.
    BodyTooLarge(u64),
    /// More redirects than allowed were followed; the number is the limit.
    TooManyRedirects(u32),
    /// The peer broke the protocol (malformed HTTP, connection reset…).
    Protocol(String),
    /// A per-run cap (requests, bytes, connections) was reached.
    LimitExceeded(String),
    /// The host does not implement this call (yet).
    Unsupported(String),
}

impl NetError {
    /// A short, stable name of the kind of error: `invalid-request`, `denied`,
    /// `dns`, `connect`, `tls`, `timeout`, `body-too-large`,
    /// `too-many-redirects`, `protocol`, `limit-exceeded` or `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            NetError::InvalidRequest(_) => "invalid-request",
            NetError::Denied(_) => "denied",
            NetError::Dns(_) => "dns",
            NetError::Connect(_) => "connect",
            NetError::Tls(_) => "tls",
            NetError::Timeout(_) => "timeout",
            NetError::BodyTooLarge(_) => "body-too-large",
            NetError::TooManyRedirects(_) => "too-many-redirects",
            NetError::Protocol(_) => "protocol",
            NetError::LimitExceeded(_) => "limit-exceeded",
            NetError::Unsupported(_) => "unsupported",
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::InvalidRequest(s) => write!(f, "invalid request: {s}"),
            NetError::Denied(s) => write!(f, "denied: {s}"),
            NetError::Dns(s) => write!(f, "dns: {s}"),
            NetError::Connect(s) => write!(f, "connect: {s}"),
            NetError::Tls(s) => write!(f, "tls: {s}"),
            NetError::Timeout(phase) => write!(f, "timeout: expired during {phase}"),
            NetError::BodyTooLarge(n) => write!(f, "body too large: over {n} bytes"),
            NetError::TooManyRedirects(n) => write!(f, "too many redirects: more than {n}"),
            NetError::Protocol(s) => write!(f, "protocol: {s}"),
            NetError::LimitExceeded(s) => write!(f, "limit exceeded: {s}"),
            NetError::Unsupported(s) => write!(f, "unsupported: {s}"),
        }
    }
}

impl std::error::Error for NetError {}

impl From<RawNetError> for NetError {
    fn from(raw: RawNetError) -> Self {
        match raw {
            RawNetError::InvalidRequest(s) => NetError::InvalidRequest(s),
            RawNetError::Denied(s) => NetError::Denied(s),
            RawNetError::Dns(s) => NetError::Dns(s),
            RawNetError::Connect(s) => NetError::Connect(s),
            RawNetError::Tls(s) => NetError::Tls(s),
            RawNetError::Timeout(s) => NetError::Timeout(s),
            RawNetError::BodyTooLarge(n) => NetError::BodyTooLarge(n),
            RawNetError::TooManyRedirects(n) => NetError::TooManyRedirects(n),
            RawNetError::Protocol(s) => NetError::Protocol(s),
            RawNetError::LimitExceeded(s) => NetError::LimitExceeded(s),
            RawNetError::Unsupported(s) => NetError::Unsupported(s),
        }
    }
}

/// Why a secret could not be read (see [`secrets::get`](crate::secrets::get)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The operator did not grant this secret to this check.
    NotGranted(String),
    /// The secret is granted but its source is empty or missing; the string
    /// says which source.
    Unavailable(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotGranted(s) => write!(f, "secret not granted: {s}"),
            SecretError::Unavailable(s) => write!(f, "secret unavailable: {s}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<RawSecretError> for SecretError {
    fn from(raw: RawSecretError) -> Self {
        match raw {
            RawSecretError::NotGranted(s) => SecretError::NotGranted(s),
            RawSecretError::Unavailable(s) => SecretError::Unavailable(s),
        }
    }
}

/// Why a run ended early, without a verdict of its own: the `Err` of
/// [`Check::run`](crate::Check::run), so that a check can use `?` on
/// configuration parsing ([`ConfigError`]), host calls ([`NetError`]) and
/// secrets ([`SecretError`]).
///
/// # What the host sees
///
/// Every error, whatever its [`ErrorKind`], becomes a result with status
/// `fail`, no assertions, and the error's message as its summary (exactly
/// what [`Outcome::from`] gives). None becomes `error`: the contract's
/// verdicts are `pass`, `degraded` and `fail`, and `error` is the host's word
/// for a run it had to stop (a trap, a panic, a limit), which a returned
/// error is not. The kind is for the check's own code and tests.
///
/// ```
/// use vantage_sdk::{Context, Error, ErrorKind, Outcome, Status};
///
/// fn prepare(ctx: &Context) -> Result<u16, Error> {
///     let port = ctx.config_parse::<u16>("port")?.unwrap_or(443);
///     ctx.require_targets("configure the `host:port` to probe")?;
///     Ok(port)
/// }
///
/// let ctx = Context::builder().config("port", "https").build();
/// let error = prepare(&ctx).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Config);
/// let result = Outcome::from(error).into_result();
/// assert_eq!(result.status, Status::Fail);
/// assert!(result.summary.starts_with("invalid config `port` = \"https\": "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// What an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operator's configuration: a key the check does not declare, a
    /// required key missing, a value that does not parse.
    Config,
    /// Nothing to probe: no target (or name) is configured.
    NoTarget,
    /// A network call produced no answer (see [`NetError`]).
    Net,
    /// A secret could not be read (see [`SecretError`]).
    Secret,
    /// Anything else, explained by the message.
    Other,
}

impl Error {
    /// An error of `kind` with `message`, the summary the host will show.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A configuration error whose message is given whole (for one that is
    /// not about a single key's value; those are a [`ConfigError`]).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// `no target: <hint>`, where `hint` says what to configure.
    pub fn no_target(hint: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NoTarget, format!("no target: {hint}"))
    }

    /// Any other reason the run cannot go on.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// The same error with `<what>: ` before its message, e.g.
    /// `cannot read the password: secret not granted: password`.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// What the error is about.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as the summary will show it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::new(ErrorKind::Config, error.to_string())
    }
}

impl From<NetError> for Error {
    fn from(error: NetError) -> Self {
        Self::new(ErrorKind::Net, error.to_string())
    }
}

impl From<SecretError> for Error {
    fn from(error: SecretError) -> Self {
        Self::new(ErrorKind::Secret, error.to_string())
    }
}

impl From<Error> for Outcome {
    /// A failed outcome with the error's message as its summary (see
    /// [`Error`]).
    fn from(error: Error) -> Self {
        let mut outcome = Outcome::new();
        outcome
            .fail(error.message.clone())
            .set_summary(error.message);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lead_with_the_kind() {
        let e = NetError::from(RawNetError::Denied(
            "host x is not in the allow list".into(),
        ));
        assert_eq!(e.to_string(), "denied: host x is not in the allow list");
        assert_eq!(e.kind(), "denied");
        assert_eq!(
            NetError::Timeout("connect".into()).to_string(),
            "timeout: expired during connect"
        );
        assert_eq!(NetError::TooManyRedirects(10).kind(), "too-many-redirects");
        let s = SecretError::from(RawSecretError::NotGranted("token".into()));
        assert_eq!(s.to_string(), "secret not granted: token");
    }

    #[test]
    fn run_errors_keep_the_message_and_name_the_kind() {
        let e = Error::from(ConfigError::new("timeout", "5", "missing unit"));
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            e.to_string(),
            "invalid config `timeout` = \"5\": missing unit"
        );
        let e = Error::from(NetError::Connect("refused".into()));
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Net, "connect: refused")
        );
        let e = Error::from(SecretError::NotGranted("password".into()))
            .context("cannot read the password");
        assert_eq!(e.kind(), ErrorKind::Secret);
        assert_eq!(
            e.to_string(),
            "cannot read the password: secret not granted: password"
        );
        let e = Error::no_target("configure the URL to fetch");
        assert_eq!(e.kind(), ErrorKind::NoTarget);
        assert_eq!(e.message(), "no target: configure the URL to fetch");
    }

    #[test]
    fn every_kind_becomes_a_failed_result_with_the_message_as_summary() {
        for e in [
            Error::config("starttls = \"x\": expected smtp, imap or pop3"),
            Error::no_target("configure one"),
            Error::from(NetError::Denied("host x".into())),
            Error::from(SecretError::Unavailable("env:X is empty".into())),
            Error::other("unknown behaviour \"y\""),
        ] {
            let r = Outcome::from(e.clone()).into_result();
            assert_eq!(r.status, crate::Status::Fail, "{e}");
            assert_eq!(r.summary, e.message());
            assert!(r.assertions.is_empty() && r.measurements.is_empty());
        }
    }
}
