//! Errors of host calls, with readable messages.

use std::fmt;

use crate::bindings::vantage::check::secrets::SecretError as RawSecretError;
use crate::bindings::vantage::check::types::NetError as RawNetError;

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
}
