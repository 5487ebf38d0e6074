//! Plain settings of the S3 bucket the audit log ships to: what the
//! configuration names and the audit shipper (`audit::s3`) reads.
//! They live here, below both, so the configuration does not import the
//! shipper (and an edge build without the `restore` feature still parses
//! them).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};

/// The default key prefix of audit objects.
pub const DEFAULT_PREFIX: &str = "audit/";

/// The default cadence of the audit log's checkpoint records.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(3600);

/// Object Lock mode of written records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` can still delete or shorten.
    Governance,
    /// Nobody, root included, can delete the version before the date.
    Compliance,
}

/// Object Lock retention of written records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The lock mode.
    pub mode: LockMode,
    /// Retain until now + this many days.
    pub days: u32,
}

/// Server-side encryption of written records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS (`aws:kms`), with this key id or ARN (None: the bucket's
    /// default KMS key).
    Kms(Option<String>),
}

/// Refuse an endpoint without TLS unless it is loopback.
pub fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let url =
        url::Url::parse(endpoint).with_context(|| format!("invalid endpoint {endpoint:?}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                bail!(
                    "refusing endpoint {endpoint}: audit records go to S3 over TLS \
                     (https://); plain http is only allowed to a loopback address"
                )
            }
        }
        other => bail!("invalid endpoint {endpoint}: scheme {other:?}, expected https"),
    }
}
