//! The Prometheus remote-write 1.0 messages (`prometheus/prompb`:
//! `WriteRequest`, `TimeSeries`, `Label`, `Sample`), the fields a sender
//! fills; a request body is one `WriteRequest`, protobuf-encoded, then
//! snappy block-compressed.

use prost::Message as _;

/// A request: every series it carries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: its labels (`__name__` included, sorted by name) and samples
/// in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A label pair.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample: a value at a time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

impl WriteRequest {
    /// The request body: protobuf, snappy block-compressed.
    pub fn body(&self) -> Vec<u8> {
        let raw = self.encode_to_vec();
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }

    /// A request body read back (receivers and tests).
    pub fn from_body(body: &[u8]) -> Result<Self, String> {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| format!("snappy: {e}"))?;
        WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
    }

    /// How many samples the request carries.
    pub fn samples(&self) -> usize {
        self.timeseries.iter().map(|t| t.samples.len()).sum()
    }
}

impl TimeSeries {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_snappy_block_protobuf_and_reads_back() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "probe_success".into(),
                    },
                    Label {
                        name: "check".into(),
                        value: "api".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
            }],
        };
        let body = request.body();
        // Snappy block format: a varint of the uncompressed length first
        // (not the framed format's stream identifier).
        assert_ne!(body[0], 0xff);
        assert_eq!(WriteRequest::from_body(&body).unwrap(), request);
        // The protobuf bytes are prompb's: field 1 (timeseries) is
        // length-delimited, and inside it field 1 (labels) too.
        let raw = request.encode_to_vec();
        assert_eq!(raw[0], 0x0a);
        assert_eq!(raw[2], 0x0a);
    }
}
