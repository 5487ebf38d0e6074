//! Secret redaction (issue 12, item 1): no fragment of 6 or more characters
//! of a granted secret reaches any output the host produces, whatever the
//! guest cut or split.
//!
//! - Property tests of the one redaction routine (`CheckResult::redact`,
//!   `vantage::capabilities::secrets::Redactor`): random secrets, cut and
//!   split at random points, inside random text in every field a guest
//!   writes; and the forms text carries instead of a secret (base64 of basic
//!   authentication, URL encodings). Bounded: 256 cases per property.
//! - The real daemon running the hostile guest's `secret-split` behaviour,
//!   with alerts going to a webhook served here: the API, the run history
//!   (API and the SQLite file itself), the status page, `/metrics`, the
//!   daemon's own log, the webhook payloads.
//!
//! The CLI's view of the same guest is in `hostile.rs`; the official `http`
//! check against a server echoing the `Authorization` header is in
//! `http_check.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::Value;
use vantage::capabilities::http::HttpTrace;
use vantage::capabilities::log::{Level, LogLine};
use vantage::capabilities::secrets::{REDACTED, Revealed, fragments};
use vantage::result::{
    Assertion, CheckResult, ErrorKind, LeafCertificate, Measurement, RunError, RunTimings, Status,
    TlsTrace,
};

use crate::daemon::Daemon;
use crate::servers::{http_get, wait_until};
use crate::support::wasm;

/// The first fragment of `secret` of `MIN_FRAGMENT_CHARS` (6) characters that
/// `text` contains.
pub(crate) fn leaked_fragment<'a>(text: &str, secret: &'a str) -> Option<&'a str> {
    fragments(secret).find(|fragment| text.contains(fragment))
}

/// Panic, showing the lines concerned, if `text` (named `what`) holds a
/// fragment of `secret`.
pub(crate) fn assert_no_fragment(what: &str, text: &str, secret: &str) {
    if let Some(fragment) = leaked_fragment(text, secret) {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(fragment)).collect();
        panic!(
            "{what} holds {fragment:?}, a fragment of the secret {secret:?}:\n{}",
            lines.join("\n")
        );
    }
}

/// A seed for this run of a randomized test (printed, so a failure can be
/// replayed by setting `VANTAGE_TEST_SEED`).
pub(crate) fn seed() -> u64 {
    let seed = std::env::var("VANTAGE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
                | 1
        });
    eprintln!("seed {seed} (replay with VANTAGE_TEST_SEED={seed})");
    seed
}

/// A random token of `len` characters of the base64url alphabet (like API
/// keys and JWTs), from `seed`.
pub(crate) fn random_token(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let n = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58;
            ALPHABET[n as usize % ALPHABET.len()] as char
        })
        .collect()
}

/// Every string in a JSON value (object keys included).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// What a guest may do to a secret before writing it somewhere.
#[derive(Debug, Clone)]
enum Cut {
    Whole,
    /// Up to a cut, then `…` (an excerpt).
    Prefix(usize),
    /// From a cut on.
    Suffix(usize),
    /// Between two cuts.
    Middle(usize, usize),
    /// Split at cuts, the pieces joined by a separator.
    Split(Vec<usize>, String),
}

impl Cut {
    /// The text `secret` becomes; cut points are taken modulo its length
    /// in characters.
    fn apply(&self, secret: &str) -> String {
        let chars: Vec<char> = secret.chars().collect();
        let at = |n: usize| n % (chars.len() + 1);
        let text = |range: std::ops::Range<usize>| chars[range].iter().collect::<String>();
        match self {
            Cut::Whole => secret.to_string(),
            Cut::Prefix(n) => format!("{}…", text(0..at(*n))),
            Cut::Suffix(n) => text(at(*n)..chars.len()),
            Cut::Middle(a, b) => {
                let (a, b) = (at(*a).min(at(*b)), at(*a).max(at(*b)));
                text(a..b)
            }
            Cut::Split(cuts, separator) => {
                let mut cuts: Vec<usize> = cuts.iter().map(|&n| at(n)).collect();
                cuts.push(chars.len());
                cuts.sort_unstable();
                let mut start = 0;
                let mut pieces = Vec::new();
                for end in cuts {
                    pieces.push(text(start..end));
                    start = end;
                }
                pieces.join(separator)
            }
        }
    }
}

fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        Just(Cut::Whole),
        any::<usize>().prop_map(Cut::Prefix),
        any::<usize>().prop_map(Cut::Suffix),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Cut::Middle(a, b)),
        (
            prop::collection::vec(any::<usize>(), 1..4),
            prop_oneof![Just(""), Just(" "), Just("\n"), Just("…"), Just("\", \"")]
        )
            .prop_map(|(cuts, sep)| Cut::Split(cuts, sep.to_string())),
    ]
}

/// Secrets: tokens, passwords with punctuation, and non-ASCII ones.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{6,64}",
        "[!-Z^-~]{6,32}",
        "[a-zäöüéΩ€😀0-9]{6,24}",
    ]
    // "[redacted]" itself shares windows with a secret containing e.g.
    // "dacted": that is the marker, not a leak.
    .prop_filter("shares a window with the marker", |s| {
        leaked_fragment(REDACTED, s).is_none()
    })
}

/// Text around a piece: printable ASCII and some non-ASCII.
fn filler() -> impl Strategy<Value = String> {
    "[ -~äé€😀]{0,24}"
}

/// One field's text: a piece of one of the secrets, in filler.
fn field(secrets: usize) -> impl Strategy<Value = (usize, Cut, String, String)> {
    (0..secrets, cut(), filler(), filler())
}

/// The guest-written fields of a result, in this order.
const FIELDS: usize = 24;

fn result_with(texts: &[String]) -> CheckResult {
    let t = |i: usize| texts[i].clone();
    CheckResult {
        check: "check".into(),
        status: Status::Fail,
        summary: t(0),
        duration_ms: 1.0,
        location: "here".into(),
        run_id: "run-1".into(),
        started_unix_ms: 0,
        assertions: vec![Assertion {
            name: t(1),
            passed: false,
            warn: false,
            detail: t(2),
            duration_ms: None,
        }],
        measurements: vec![Measurement {
            labels: [(t(22), t(23))].into(),
            name: t(3),
            value: 1.0,
            unit: t(4),
        }],
        labels: vec![(t(5), t(6))],
        timings: RunTimings {
            instantiate_ms: 0.0,
            run_ms: 0.0,
            http: vec![HttpTrace {
                method: t(7),
                url: t(8),
                status: None,
                remote_addr: None,
                redirects: 0,
                timings: Default::default(),
                error: Some(t(9)),
            }],
            tls: vec![TlsTrace {
                via: "tls".into(),
                server: t(14),
                version: t(15),
                verdict: t(16),
                earliest_expiry_unix_ms: None,
                verified_expiry_unix_ms: None,
                leaf: Some(LeafCertificate {
                    subject: t(17),
                    issuer: t(18),
                    sans: vec![t(19)],
                    serial: t(20),
                    sha256_fingerprint: t(21),
                }),
            }],
        },
        logs: vec![
            LogLine {
                level: Level::Info,
                message: t(10),
            },
            LogLine {
                level: Level::Warn,
                message: t(11),
            },
            LogLine {
                level: Level::Error,
                message: t(12),
            },
        ],
        error: Some(RunError {
            kind: ErrorKind::Panic,
            message: t(13),
        }),
    }
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    /// Random secrets, cut and split at random points, inside random text
    /// in every field a guest writes: after redaction, no fragment of 6
    /// characters of any secret is left in the serialized result, and the
    /// host's own fields are untouched.
    #[test]
    fn no_fragment_survives_in_any_field(
        secrets in prop::collection::vec(secret(), 1..4),
        fields in prop::collection::vec(field(3), FIELDS),
    ) {
        let texts: Vec<String> = fields
            .iter()
            .map(|(which, cut, before, after)| {
                let secret = &secrets[which % secrets.len()];
                format!("{before}{}{after}", cut.apply(secret))
            })
            .collect();
        let mut result = result_with(&texts);
        let revealed = Revealed::default();
        for secret in &secrets {
            revealed.add(secret);
        }
        revealed.redact_result(&mut result);
        let json = serde_json::to_value(&result).unwrap();
        let mut all = Vec::new();
        strings(&json, &mut all);
        for text in &all {
            for secret in &secrets {
                prop_assert_eq!(leaked_fragment(text, secret), None, "in {:?}", text);
            }
        }
        prop_assert_eq!(&result.check, "check");
        prop_assert_eq!(&result.location, "here");
        prop_assert_eq!(&result.run_id, "run-1");
    }

    /// The forms a secret takes on the way out: basic authentication's
    /// base64 of `user:password` (any user name, so any alignment), and
    /// URL-encoded in a query, cut anywhere. No 6 characters in a row that
    /// depend on the secret alone are left.
    #[test]
    fn derived_forms_lose_every_fragment(
        secret in secret(),
        user in "[a-z]{0,12}",
        cut in any::<usize>(),
    ) {
        let revealed = Revealed::default();
        revealed.add(&secret);

        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        let cut_at = cut % (encoded.len() + 1);
        let header = format!("authorization: Basic {}…", &encoded[..cut_at]);
        let redacted = revealed.redact(&header);
        // The characters of the encoding that depend on the secret's bytes only.
        let first = (8 * (user.len() + 1)).div_ceil(6);
        let last = 8 * (user.len() + 1 + secret.len()) / 6;
        let core = &encoded[first..last];
        prop_assert_eq!(leaked_fragment(&redacted, core), None, "{}", redacted);

        let mut url = url::Url::parse("http://example.test/").unwrap();
        url.query_pairs_mut().append_pair("token", &secret);
        let query = url.query().unwrap().to_string();
        let cut_at = query.char_indices().map(|(i, _)| i).nth(cut % query.len()).unwrap_or(0);
        let text = format!("GET /?{}…", &query[..cut_at]);
        let redacted = revealed.redact(&text);
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        prop_assert_eq!(leaked_fragment(&redacted, &form), None, "{}", redacted);
        prop_assert_eq!(leaked_fragment(&redacted, &secret), None, "{}", redacted);
    }
}

/// A webhook receiver on 127.0.0.1: every body it was sent.
async fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let store = bodies.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), bodies)
}

/// The hostile guest cuts and splits a granted secret every second inside
/// the real daemon, which alerts on it: nothing the daemon serves, stores,
/// logs or sends holds a fragment of 6 characters of it.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_stores_logs_and_sends_no_fragment() {
    let seed = seed();
    let secret = random_token(seed, 64);
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("token");
    std::fs::write(&secret_path, &secret).unwrap();
    let (hook, bodies) = webhook().await;
    // (Alertmanager's payload is built from the same redacted result as the
    // webhook's; the real Alertmanager is not installed on every machine.)
    let global = format!("[alerts]\nwebhooks = [\"{hook}\"]\n");
    let body = format!(
        "[[check]]\nname = \"splitter\"\ncomponent = \"{}\"\nevery = \"1s\"\n\
         failure_threshold = 1\n\
         [check.secrets]\ntoken = \"file:{}\"\n\
         [check.config]\nbehaviour = \"secret-split\"\nsecret = \"token\"\nseed = \"{seed}\"\n",
        wasm("fixture_hostile").display(),
        secret_path.display()
    );
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || Daemon::start(&dir, &global, &body, &["--no-watch", "-vvv"])
    })
    .await
    .unwrap();

    // Two runs, the alert delivered both ways.
    tokio::task::spawn_blocking({
        let (url, bodies) = (daemon.url(), bodies.clone());
        move || {
            wait_until("two runs and the alert", Duration::from_secs(30), || {
                let runs = crate::servers::get_json(&format!("{url}/api/v1/checks/splitter/runs"));
                let n = runs.as_array().map_or(0, Vec::len);
                let hooks = bodies.lock().unwrap().len();
                let done = n >= 2 && hooks >= 1;
                (done.then_some(()), format!("{n} runs, {hooks} webhooks"))
            })
        }
    })
    .await
    .unwrap();

    let get = |path: &str| {
        let (status, body) = http_get(&format!("{}{path}", daemon.url())).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let runs = get("/api/v1/checks/splitter/runs");
    // The guest's cuts did reach the outputs, redacted.
    assert!(runs.contains("tail-out [redacted]"), "{runs}");
    assert!(runs.contains("tail-err [redacted]"), "{runs}");
    for (what, text) in [
        ("/api/v1/checks", get("/api/v1/checks")),
        ("/api/v1/checks/splitter", get("/api/v1/checks/splitter")),
        ("/api/v1/checks/splitter/runs", runs.clone()),
        ("the status page", get("/")),
        ("/metrics", get("/metrics")),
        ("the webhook payloads", bodies.lock().unwrap().join("\n")),
    ] {
        assert_no_fragment(what, &text, &secret);
    }
    // The history on disk (database, journal), byte for byte.
    let mut stored = 0;
    for entry in walk(&dir.path().join("data")) {
        let bytes = std::fs::read(&entry).unwrap();
        stored += bytes.len();
        assert_no_fragment(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            &secret,
        );
    }
    assert!(stored > 0, "no history files");
    // The daemon's own log, at trace level: the guest's lines arrived, redacted.
    let log = daemon.stderr();
    assert!(log.contains("piece "), "{log}");
    assert_no_fragment("the daemon's log", &log, &secret);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
