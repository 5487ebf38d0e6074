//! The audit log's metrics, registered in the daemon's registry
//! ([`super::metrics::Metrics`]) and updated by the shipper:
//!
//! | metric | meaning |
//! |---|---|
//! | `vantage_audit_last_shipped_seq` | sequence number of the last record S3 acknowledged |
//! | `vantage_audit_last_shipped_timestamp_seconds` | unix time of the last successful ship (0: none since start-up) |
//! | `vantage_audit_spool_records` | records spooled, not yet in S3 |
//! | `vantage_audit_ship_failures_total` | shipping passes that failed (S3 down, a conflicting writer, a spooled record that does not verify) |

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The audit log's gauges and counter (cheap to clone: clones share).
#[derive(Debug, Clone, Default)]
pub struct AuditGauges {
    /// `vantage_audit_last_shipped_seq`.
    pub last_shipped_seq: Gauge,
    /// `vantage_audit_last_shipped_timestamp_seconds`.
    pub last_shipped_timestamp: Gauge<f64, AtomicU64>,
    /// `vantage_audit_spool_records`.
    pub spool_records: Gauge,
    /// `vantage_audit_ship_failures_total`.
    pub ship_failures: Counter,
}

impl AuditGauges {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let g = AuditGauges::default();
        registry.register(
            "vantage_audit_last_shipped_seq",
            "Sequence number of the last audit record S3 acknowledged",
            g.last_shipped_seq.clone(),
        );
        registry.register(
            "vantage_audit_last_shipped_timestamp_seconds",
            "Unix time of the last successful audit shipment (0: none since start-up)",
            g.last_shipped_timestamp.clone(),
        );
        registry.register(
            "vantage_audit_spool_records",
            "Audit records spooled locally, not yet in S3",
            g.spool_records.clone(),
        );
        registry.register(
            "vantage_audit_ship_failures",
            "Audit shipping passes that failed",
            g.ship_failures.clone(),
        );
        g
    }
}
