//! What a daemon says about itself, so that a central view can tell its
//! edges apart and flag one that drifts: its build, the hash of the
//! configuration it runs, its location, its clock's offset from a server's
//! (the `Date` of the remote-write receiver's answers), and a heartbeat.
//!
//! | metric | meaning |
//! |---|---|
//! | `vantage_build_info{version}` | 1, labelled with the daemon's version |
//! | `vantage_config_info{sha256}` | 1, labelled with the sha256 of the configuration file running |
//! | `vantage_clock_offset_seconds` | the receiver's clock minus this daemon's (absent until measured) |
//! | `vantage_heartbeat_timestamp_seconds` | when the series were taken (pushed every 15 s by remote write) |
//!
//! Each carries `location`. `/metrics` renders them at scrape time; remote
//! write pushes them on its own, so a silent location shows as a heartbeat
//! that stopped.

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::metrics::Series;

/// The daemon's identity; cheap to clone, shared by the metrics and remote
/// write.
#[derive(Debug, Clone)]
pub struct Identity {
    location: String,
    state: Arc<RwLock<State>>,
}

#[derive(Debug, Default)]
struct State {
    config_sha256: String,
    clock_offset: Option<f64>,
}

impl Identity {
    /// The identity of a daemon at `location`.
    pub fn new(location: &str) -> Self {
        Identity {
            location: location.to_string(),
            state: Arc::default(),
        }
    }

    /// The location the daemon reports.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The configuration now running (after a start or an accepted reload).
    pub fn set_config(&self, sha256: &str) {
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .config_sha256 = sha256.to_string();
    }

    /// A measured clock offset: a server's clock minus ours, seconds.
    pub fn set_clock_offset(&self, seconds: f64) {
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clock_offset = Some(seconds);
    }

    /// The series at unix time `now` (seconds).
    pub fn series(&self, now: f64) -> Vec<Series> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let location = ("location".to_string(), self.location.clone());
        let mut out: Vec<Series> = vec![
            (
                "vantage_build_info",
                vec![
                    location.clone(),
                    ("version".into(), env!("CARGO_PKG_VERSION").into()),
                ],
                1.0,
            ),
            (
                "vantage_heartbeat_timestamp_seconds",
                vec![location.clone()],
                now,
            ),
        ];
        if !state.config_sha256.is_empty() {
            out.push((
                "vantage_config_info",
                vec![
                    location.clone(),
                    ("sha256".into(), state.config_sha256.clone()),
                ],
                1.0,
            ));
        }
        if let Some(offset) = state.clock_offset {
            out.push(("vantage_clock_offset_seconds", vec![location], offset));
        }
        out
    }
}

/// Help texts, by metric.
fn help(name: &str) -> &'static str {
    match name {
        "vantage_build_info" => "1, labelled with the daemon's version",
        "vantage_config_info" => "1, labelled with the sha256 of the configuration running",
        "vantage_clock_offset_seconds" => {
            "A server's clock (the remote-write receiver's Date) minus this daemon's, seconds"
        }
        _ => "When these series were taken, unix seconds",
    }
}

impl Collector for Identity {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        for (name, labels, value) in self.series(now) {
            let mut metric =
                encoder.encode_descriptor(name, help(name), None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_renders_its_series_with_the_location() {
        let id = Identity::new("fra1");
        let names = |s: &[Series]| s.iter().map(|(n, _, _)| *n).collect::<Vec<_>>();
        assert_eq!(
            names(&id.series(1.0)),
            ["vantage_build_info", "vantage_heartbeat_timestamp_seconds"]
        );
        id.set_config("abc");
        id.set_clock_offset(-2.5);
        let series = id.series(5.0);
        assert_eq!(series.len(), 4);
        assert!(
            series
                .iter()
                .all(|(_, l, _)| l.contains(&("location".into(), "fra1".into())))
        );
        let offset = series
            .iter()
            .find(|(n, _, _)| *n == "vantage_clock_offset_seconds")
            .unwrap();
        assert_eq!(offset.2, -2.5);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(id));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("vantage_config_info{location=\"fra1\",sha256=\"abc\"} 1"),
            "{text}"
        );
    }
}
