//! Record and replay of a run's host interactions: cassettes.
//!
//! A run carries a [`Tape`]. Live (the default), it does nothing. Recording,
//! every call the check makes to a host capability (`http.fetch`,
//! `wasi:http` requests, `tls.inspect`, `dns.resolve`, `tcp.probe`, the
//! `clock` readings and sleeps) is stored with its answer and with what the
//! call added to the run's HTTP and TLS traces. Replaying, the same calls are
//! answered from a [`Cassette`] in order, without touching the network, the
//! clock or a secret: a check's verdict can be tested offline and
//! deterministically (`vantage run --record`, `vantage test`; Kubewarden's
//! `--record-host-capabilities-interactions` is the model).
//!
//! Each interaction is checked on replay against the call it answers: the
//! same capability and the same target (`GET https://api.example.com/`,
//! `A example.com`). A check that asks for something else fails with the
//! interaction's number and both sides, never with a made-up answer.
//!
//! Secrets never reach a cassette: recorded values are redacted with the
//! run's revealed secrets (every string, request and answer, and bodies),
//! and on replay a granted secret reads as [`REDACTED`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::net::Net;
pub use super::secrets::REDACTED;
use super::secrets::Revealed;
use crate::result::{HttpTrace, Status, TlsTrace};

/// The cassette file format this host writes and reads.
pub const FORMAT: u32 = 1;

/// Most interactions one recording keeps: a check polling the clock in a
/// loop must not grow the host's memory without bound. A recording that
/// reaches it is marked incomplete.
pub const MAX_INTERACTIONS: usize = 10_000;

/// Fields of the WIT types that carry bytes (`list<u8>`): stored as text
/// when they are UTF-8, as `{"base64": …}` otherwise.
const BYTE_FIELDS: &[&str] = &["body", "received", "Send"];

/// One host call and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// The capability call, e.g. `http.fetch`, `wasi-http.request`,
    /// `dns.resolve`, `clock.wall-now`.
    pub call: String,
    /// What it asked for, as replay matches it: `GET https://…/`,
    /// `A example.com @ system`, `example.com:443`.
    pub what: String,
    /// The request, as the WIT types it (bytes as text or base64).
    pub request: Value,
    /// The answer, as the WIT types it: `{"Ok": …}` / `{"Err": …}` for
    /// calls that can fail.
    pub response: Value,
    /// HTTP exchanges the call added to the run's trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpTrace>,
    /// TLS handshakes the call added to the run's trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsTrace>,
}

/// What the check was asked to do when the cassette was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CassetteCheck {
    /// The check's name.
    pub name: String,
    /// Its targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Its configuration, as given (`{{secret.NAME}}` references unexpanded).
    #[serde(default)]
    pub config: Vec<(String, String)>,
    /// The names of the secrets it was granted (never their values).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Location label.
    #[serde(default)]
    pub location: String,
    /// `edge` or `restore`.
    #[serde(default = "edge")]
    pub mode: String,
    /// The run's time budget, milliseconds.
    pub timeout_ms: u64,
    /// The component that ran: its source and the sha256 of its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

fn edge() -> String {
    "edge".into()
}

/// How a replayed run must end for its test to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The run's status.
    pub status: Status,
    /// Assertions that must be present with this state (others may exist).
    #[serde(default)]
    pub assertions: Vec<ExpectedAssertion>,
}

/// One assertion a replayed run must make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedAssertion {
    /// Its name, exactly as the check names it.
    pub name: String,
    /// `pass`, `warn` or `fail`.
    pub state: AssertionState,
}

/// An assertion's state, as a cassette states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssertionState {
    /// It held.
    Pass,
    /// It held, with a warning.
    Warn,
    /// It did not hold.
    Fail,
}

impl AssertionState {
    /// The state of a result's assertion.
    pub fn of(assertion: &crate::result::Assertion) -> Self {
        match (assertion.passed, assertion.warn) {
            (false, _) => AssertionState::Fail,
            (true, true) => AssertionState::Warn,
            (true, false) => AssertionState::Pass,
        }
    }
}

/// A recorded run: what the check was asked, every host interaction in
/// order, and how the run ended. A JSON file meant to be read, edited (a
/// status changed to 500 to test a failure path) and committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cassette {
    /// [`FORMAT`].
    pub vantage_cassette: u32,
    /// When the recording started, unix ms: the replayed run's clocks start
    /// there (certificate expiry arithmetic gives the recorded answer).
    pub recorded_at_unix_ms: u64,
    /// What the check was asked to do.
    pub check: CassetteCheck,
    /// Every host interaction, in call order.
    pub interactions: Vec<Interaction>,
    /// How the run ended; what `vantage test` holds the replay to.
    pub expect: Expectation,
}

impl Cassette {
    /// Parse a cassette, refusing another format version.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("vantage_cassette").and_then(Value::as_u64) {
            Some(v) if v == u64::from(FORMAT) => {}
            Some(v) => return Err(format!("cassette format {v}; this vantage reads {FORMAT}")),
            None => return Err("not a cassette: no `vantage_cassette` field".into()),
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// A run's tape: live, recording, or replaying. Cheap to clone; every
/// capability of a run holds the same one.
#[derive(Debug, Clone, Default)]
pub struct Tape(Option<Arc<Mutex<Reel>>>);

#[derive(Debug)]
enum Reel {
    Recording {
        interactions: Vec<Interaction>,
        complete: bool,
    },
    Replaying {
        interactions: Vec<Interaction>,
        next: usize,
        started_unix_ms: u64,
        secrets: Vec<String>,
        /// The first call the cassette could not answer.
        diverged: Option<String>,
    },
}

/// Why a replay cannot answer a call: the run ends with this as its error.
fn mismatch(message: String) -> wasmtime::Error {
    wasmtime::Error::msg(format!("replay: {message}"))
}

impl Tape {
    /// A tape that records nothing: the run talks to the world.
    pub fn live() -> Self {
        Tape(None)
    }

    /// A tape that records every interaction of the run.
    pub fn recording() -> Self {
        Tape(Some(Arc::new(Mutex::new(Reel::Recording {
            interactions: Vec::new(),
            complete: true,
        }))))
    }

    /// A tape that answers the run's calls from `cassette`.
    pub fn replaying(cassette: &Cassette) -> Self {
        Tape(Some(Arc::new(Mutex::new(Reel::Replaying {
            interactions: cassette.interactions.clone(),
            next: 0,
            started_unix_ms: cassette.recorded_at_unix_ms,
            secrets: cassette.check.secrets.clone(),
            diverged: None,
        }))))
    }

    fn reel(&self) -> Option<std::sync::MutexGuard<'_, Reel>> {
        self.0
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// When the replayed run started (its clocks start there), if replaying.
    pub fn replay_start_unix_ms(&self) -> Option<u64> {
        match self.reel().as_deref() {
            Some(Reel::Replaying {
                started_unix_ms, ..
            }) => Some(*started_unix_ms),
            _ => None,
        }
    }

    /// Whether the secret `name` was granted to the recorded run, if
    /// replaying (`None` when not replaying).
    pub fn replay_grants_secret(&self, name: &str) -> Option<bool> {
        match self.reel().as_deref() {
            Some(Reel::Replaying { secrets, .. }) => Some(secrets.iter().any(|s| s == name)),
            _ => None,
        }
    }

    /// Perform one host call through the tape: `live` runs it for real
    /// (live and recording); a replay answers from the cassette instead.
    /// `what` names the call's target for matching; `net`, when the call
    /// adds HTTP or TLS traces, is where they go.
    pub async fn exchange<Req, Resp, F>(
        &self,
        call: &'static str,
        what: impl FnOnce(&Req) -> String,
        request: Req,
        net: Option<&Net>,
        live: impl FnOnce(Req) -> F,
    ) -> wasmtime::Result<Resp>
    where
        Req: Serialize,
        Resp: Serialize + DeserializeOwned,
        F: Future<Output = Resp>,
    {
        let Some(reel) = &self.0 else {
            return Ok(live(request).await);
        };
        let recording = matches!(
            *reel.lock().unwrap_or_else(|e| e.into_inner()),
            Reel::Recording { .. }
        );
        if recording {
            let asked = what(&request);
            let mut recorded = serde_json::to_value(&request)?;
            let (http_before, tls_before) = net.map(|n| n.trace_lengths()).unwrap_or_default();
            let response = live(request).await;
            let (http, tls) = net
                .map(|n| n.traces_since(http_before, tls_before))
                .unwrap_or_default();
            let mut answer = serde_json::to_value(&response)?;
            bytes_to_text(&mut recorded);
            bytes_to_text(&mut answer);
            let interaction = Interaction {
                call: call.to_string(),
                what: asked,
                request: recorded,
                response: answer,
                http,
                tls,
            };
            if let Reel::Recording {
                interactions,
                complete,
            } = &mut *reel.lock().unwrap_or_else(|e| e.into_inner())
            {
                if interactions.len() < MAX_INTERACTIONS {
                    interactions.push(interaction);
                } else {
                    *complete = false;
                }
            }
            return Ok(response);
        }
        let asked = what(&request);
        let interaction = {
            let mut guard = reel.lock().unwrap_or_else(|e| e.into_inner());
            let Reel::Replaying {
                interactions,
                next,
                diverged,
                ..
            } = &mut *guard
            else {
                unreachable!("the reel is replaying");
            };
            let number = *next + 1;
            let found = match interactions.get(*next) {
                None => Err(format!(
                    "call #{number} is {call} {asked}, but the cassette ends after {} \
                     interaction(s)",
                    interactions.len()
                )),
                Some(i) if i.call != call || i.what != asked => Err(format!(
                    "call #{number} is {call} {asked}, but the cassette has {} {} there",
                    i.call, i.what
                )),
                Some(i) => Ok(i.clone()),
            };
            match found {
                Ok(interaction) => {
                    *next += 1;
                    interaction
                }
                Err(message) => {
                    diverged.get_or_insert_with(|| format!("replay: {message}"));
                    return Err(mismatch(message));
                }
            }
        };
        if let Some(net) = net {
            for trace in interaction.http {
                net.record_http(trace);
            }
            for trace in interaction.tls {
                net.push_tls_trace(trace);
            }
        }
        let mut answer = interaction.response;
        text_to_bytes(&mut answer).map_err(mismatch)?;
        serde_json::from_value(answer).map_err(|e| {
            mismatch(format!(
                "the cassette's answer to {call} {asked} does not fit the call: {e}"
            ))
        })
    }

    /// Redact every recorded string with the run's revealed secrets.
    pub fn redact(&self, revealed: &Revealed) {
        if let Some(mut reel) = self.reel()
            && let Reel::Recording { interactions, .. } = &mut *reel
        {
            let redactor = revealed.redactor();
            if redactor.is_empty() {
                return;
            }
            for interaction in interactions.iter_mut() {
                let Ok(mut value) = serde_json::to_value(&*interaction) else {
                    continue;
                };
                redact_value(&mut value, &|s| redactor.redact(s).into_owned());
                if let Ok(redacted) = serde_json::from_value(value) {
                    *interaction = redacted;
                }
            }
        }
    }

    /// The recorded interactions, and whether the recording holds all of
    /// them (none past [`MAX_INTERACTIONS`] were left out).
    pub fn recorded(&self) -> (Vec<Interaction>, bool) {
        match self.reel().as_deref() {
            Some(Reel::Recording {
                interactions,
                complete,
            }) => (interactions.clone(), *complete),
            _ => (Vec::new(), true),
        }
    }

    /// The first call a replay could not answer from its cassette: the run
    /// diverged from the recording, and its verdict means nothing.
    pub fn divergence(&self) -> Option<String> {
        match self.reel().as_deref() {
            Some(Reel::Replaying { diverged, .. }) => diverged.clone(),
            _ => None,
        }
    }

    /// How many of the cassette's interactions the replay used, of how many.
    pub fn replayed(&self) -> (usize, usize) {
        match self.reel().as_deref() {
            Some(Reel::Replaying {
                interactions, next, ..
            }) => (*next, interactions.len()),
            _ => (0, 0),
        }
    }
}

/// Replace every string in `value` (keys kept) with `redact`'s result.
fn redact_value(value: &mut Value, redact: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = redact(s),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, redact)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_value(v, redact)),
        _ => {}
    }
}

/// Byte fields (arrays of numbers) as text, or `{"base64": …}`.
fn bytes_to_text(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(bytes_to_text),
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if BYTE_FIELDS.contains(&key.as_str())
                    && let Some(bytes) = as_bytes(field)
                {
                    *field = match String::from_utf8(bytes) {
                        Ok(text) => Value::String(text),
                        Err(e) => serde_json::json!({
                            "base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes())
                        }),
                    };
                } else {
                    bytes_to_text(field);
                }
            }
        }
        _ => {}
    }
}

fn as_bytes(value: &Value) -> Option<Vec<u8>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect()
}

/// The reverse of [`bytes_to_text`]: byte fields back to arrays.
fn text_to_bytes(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(text_to_bytes),
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if BYTE_FIELDS.contains(&key.as_str()) {
                    let bytes = match field {
                        Value::String(text) => Some(text.as_bytes().to_vec()),
                        Value::Object(o) => match o.get("base64").and_then(Value::as_str) {
                            Some(b64) => Some(
                                base64::engine::general_purpose::STANDARD
                                    .decode(b64)
                                    .map_err(|e| format!("field `{key}`: invalid base64: {e}"))?,
                            ),
                            None => None,
                        },
                        _ => None,
                    };
                    match bytes {
                        Some(bytes) => *field = Value::from(bytes),
                        None => text_to_bytes(field)?,
                    }
                } else {
                    text_to_bytes(field)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_stored_as_text_or_base64_and_read_back() {
        let original = serde_json::json!({
            "Ok": {"status": 200, "body": [104, 105], "steps": [{"Send": [0, 159, 146, 150]}]}
        });
        let mut stored = original.clone();
        bytes_to_text(&mut stored);
        assert_eq!(stored["Ok"]["body"], "hi");
        assert_eq!(stored["Ok"]["steps"][0]["Send"]["base64"], "AJ+Slg==");
        text_to_bytes(&mut stored).unwrap();
        assert_eq!(stored, original);
    }

    #[test]
    fn an_unknown_format_is_refused_by_number() {
        let err = Cassette::from_json(r#"{"vantage_cassette": 9}"#).unwrap_err();
        assert!(err.contains("format 9"), "{err}");
        let err = Cassette::from_json(r#"{"interactions": []}"#).unwrap_err();
        assert!(err.contains("not a cassette"), "{err}");
    }

    #[tokio::test]
    async fn a_replay_answers_in_order_and_names_a_divergent_call() {
        let recording = Tape::recording();
        let a: u64 = recording
            .exchange(
                "clock.wall-now",
                |_| String::new(),
                (),
                None,
                |_| async { 7u64 },
            )
            .await
            .unwrap();
        let b: Result<String, String> = recording
            .exchange(
                "dns.resolve",
                |q| format!("A {q}"),
                "a.test",
                None,
                |_| async { Ok("10.0.0.1".to_string()) },
            )
            .await
            .unwrap();
        assert_eq!((a, b.clone()), (7, Ok("10.0.0.1".into())));
        let (interactions, complete) = recording.recorded();
        assert!(complete);
        let cassette = Cassette {
            vantage_cassette: FORMAT,
            recorded_at_unix_ms: 1,
            check: CassetteCheck {
                name: "t".into(),
                targets: vec![],
                config: vec![],
                secrets: vec![],
                location: String::new(),
                mode: edge(),
                timeout_ms: 1000,
                component: None,
            },
            interactions,
            expect: Expectation {
                status: Status::Pass,
                assertions: vec![],
            },
        };
        let replay = Tape::replaying(&cassette);
        let live_ran = std::sync::atomic::AtomicBool::new(false);
        let a: u64 = replay
            .exchange(
                "clock.wall-now",
                |_| String::new(),
                (),
                None,
                |_| async {
                    live_ran.store(true, std::sync::atomic::Ordering::SeqCst);
                    0u64
                },
            )
            .await
            .unwrap();
        assert_eq!(a, 7);
        assert!(!live_ran.load(std::sync::atomic::Ordering::SeqCst));
        let wrong = replay
            .exchange::<_, Result<String, String>, _>(
                "dns.resolve",
                |q| format!("A {q}"),
                "b.test",
                None,
                |_| async { Ok(String::new()) },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("call #2 is dns.resolve A b.test")
                && wrong.contains("the cassette has dns.resolve A a.test"),
            "{wrong}"
        );
        assert_eq!(replay.replayed(), (1, 2));
        assert!(replay.divergence().unwrap().contains("call #2"));
    }

    #[test]
    fn recorded_strings_lose_every_secret() {
        let tape = Tape::recording();
        if let Some(mut reel) = tape.reel()
            && let Reel::Recording { interactions, .. } = &mut *reel
        {
            interactions.push(Interaction {
                call: "http.fetch".into(),
                what: "GET https://a.test/?key=hunter2-secret-value".into(),
                request: serde_json::json!({"headers": [["authorization", "Bearer hunter2-secret-value"]]}),
                response: serde_json::json!({"Ok": {"body": "echo hunter2-secret-value"}}),
                http: vec![],
                tls: vec![],
            });
        }
        let revealed = Revealed::default();
        revealed.add("hunter2-secret-value");
        tape.redact(&revealed);
        let (interactions, _) = tape.recorded();
        let text = serde_json::to_string(&interactions).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(REDACTED), "{text}");
    }
}
