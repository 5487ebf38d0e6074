//! The `secrets` interface: a check reads only the secrets the operator
//! granted it, by name. Every value read is remembered so the run's result can
//! be redacted.

pub use crate::config::secret_references as references;
use crate::result::CheckResult;
use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use base64::Engine as _;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::vantage::check::secrets as wit;
use crate::capabilities::CapabilitiesView;
use crate::config::SecretSource;

/// Fragments of a secret this long (in characters) or longer are redacted
/// wherever they appear; a secret shorter than this is redacted only whole.
pub const MIN_FRAGMENT_CHARS: usize = 6;

/// What replaces each redacted stretch of text.
pub const REDACTED: &str = "[redacted]";

/// The redaction index of a set of secret values: masks, in any text, every
/// stretch covered by fragments of [`MIN_FRAGMENT_CHARS`] characters of a
/// value, so a secret cut anywhere (an excerpt ending in `…`, a line cut at a
/// capture cap, a value logged in pieces) loses every fragment that long, not
/// only its whole occurrences.
///
/// Indexed for each value: every window of [`MIN_FRAGMENT_CHARS`] characters
/// of the value itself and of the forms text built from it takes on the way
/// out: the URL-encoded forms (query, path, user info, form encoding; what
/// the host's own URL handling writes in traces), the escaped forms (Rust
/// `{:?}` and JSON string escapes, as in assertion details) and base64 at
/// each of the three byte alignments (HTTP basic authentication encodes
/// `user:password`, so the password starts at any offset). A value shorter
/// than [`MIN_FRAGMENT_CHARS`] is matched whole, in its raw form only.
///
/// Redacting scans the text once: a two-byte prefilter, then a set lookup of
/// the window's fingerprint, for each character position. Text that shares a
/// window with a secret is masked even when it is not the secret (a
/// fingerprint collision, or a common fragment such as `passwo`): redaction
/// errs on the side of hiding.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The values, in the order they were added (to skip repeats).
    values: Vec<String>,
    /// Values shorter than [`MIN_FRAGMENT_CHARS`], matched whole.
    short: Vec<String>,
    /// The window index of each longer value (shared between runs, see
    /// [`WindowIndex::of`]).
    indexes: Vec<Arc<WindowIndex>>,
}

/// The windows of one value and of its derived forms: fingerprints and a
/// prefilter of their first two bytes. Built once per value and shared by
/// every run that reveals it (a check reads the same secrets run after run;
/// building the index is most of redaction's cost).
struct WindowIndex {
    /// Fingerprints of every window of every indexed form.
    windows: HashSet<u64, BuildHasherDefault<Premixed>>,
    /// One bit per possible first two bytes of a window.
    pairs: Box<[u64]>,
}

/// How many values' indexes [`WindowIndex::of`] keeps; past that the cache
/// starts again (a daemon's secrets are far fewer).
const INDEX_CACHE_CAP: usize = 1024;

impl WindowIndex {
    /// The index of `value`, from the process-wide cache (keyed by the
    /// value's SHA-256, so the cache holds no value) or built and cached.
    fn of(value: &str) -> Arc<WindowIndex> {
        use sha2::Digest as _;
        static CACHE: std::sync::LazyLock<
            std::sync::Mutex<std::collections::HashMap<[u8; 32], Arc<WindowIndex>>>,
        > = std::sync::LazyLock::new(Default::default);
        let key: [u8; 32] = sha2::Sha256::digest(value.as_bytes()).into();
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = cache.get(&key) {
            return Arc::clone(index);
        }
        let index = Arc::new(WindowIndex::build(value));
        if cache.len() >= INDEX_CACHE_CAP {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&index));
        index
    }

    /// Index every window of `value` and of its [derived forms](derived_forms).
    fn build(value: &str) -> WindowIndex {
        let mut index = WindowIndex {
            windows: HashSet::default(),
            pairs: vec![0; (1 << 16) / 64].into_boxed_slice(),
        };
        for form in derived_forms(value) {
            index.add_form(&form);
        }
        index.add_form(value);
        index
    }

    /// Index every window of `form`.
    fn add_form(&mut self, form: &str) {
        for (start, end) in fragment_spans(form) {
            let window = &form.as_bytes()[start..end];
            let pair = pair_index(window);
            self.pairs[pair / 64] |= 1 << (pair % 64);
            self.windows.insert(fingerprint(window));
        }
    }

    /// Whether the window starting with `window`'s first two bytes may be
    /// indexed, and then whether it is.
    #[inline]
    fn contains(&self, window: &[u8]) -> bool {
        let pair = pair_index(window);
        self.pairs[pair / 64] & (1 << (pair % 64)) != 0
            && self.windows.contains(&fingerprint(window))
    }
}

impl std::fmt::Debug for Redactor {
    // Never the values: a `Debug` print of a run's state must not leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.values.len())
            .field(
                "windows",
                &self.indexes.iter().map(|i| i.windows.len()).sum::<usize>(),
            )
            .finish()
    }
}

impl Redactor {
    /// An index of `values` (empty ones are ignored).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Redactor::default();
        for value in values {
            redactor.add(value);
        }
        redactor
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values indexed, in the order they were first added.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Index `value` (and the forms derived from it); empty values and
    /// repeats are ignored.
    pub fn add(&mut self, value: &str) {
        if value.is_empty() || self.values.iter().any(|v| v == value) {
            return;
        }
        self.values.push(value.to_string());
        if value.chars().nth(MIN_FRAGMENT_CHARS - 1).is_none() {
            self.short.push(value.to_string());
            return;
        }
        self.indexes.push(WindowIndex::of(value));
    }

    /// Whether some value's index holds `window`.
    #[inline]
    fn is_indexed(&self, window: &[u8]) -> bool {
        self.indexes.iter().any(|index| index.contains(window))
    }

    /// `text` with every stretch covered by an indexed window (and every
    /// whole short value) replaced by [`REDACTED`]. Borrows `text` when
    /// there is nothing to redact.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut runs: Vec<(usize, usize)> = Vec::new();
        if !self.indexes.is_empty() {
            self.covered(text, &mut runs);
        }
        if !self.short.is_empty() {
            for value in &self.short {
                runs.extend(
                    text.match_indices(value.as_str())
                        .map(|(i, m)| (i, i + m.len())),
                );
            }
            runs.sort_unstable();
        }
        if runs.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut kept = 0;
        let mut runs = runs.into_iter().peekable();
        while let Some((start, mut end)) = runs.next() {
            while let Some(&(next_start, next_end)) = runs.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                runs.next();
            }
            out.push_str(&text[kept..start]);
            out.push_str(REDACTED);
            kept = end;
        }
        out.push_str(&text[kept..]);
        Cow::Owned(out)
    }

    /// Push to `runs`, in order and merged, the stretches of `text` covered
    /// by indexed windows.
    fn covered(&self, text: &str, runs: &mut Vec<(usize, usize)>) {
        let bytes = text.as_bytes();
        if bytes.len() < MIN_FRAGMENT_CHARS {
            return;
        }
        let mut cover = |start: usize, end: usize| match runs.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => runs.push((start, end)),
        };
        if text.is_ascii() {
            for start in 0..=bytes.len() - MIN_FRAGMENT_CHARS {
                let end = start + MIN_FRAGMENT_CHARS;
                if self.is_indexed(&bytes[start..end]) {
                    cover(start, end);
                }
            }
        } else {
            for (start, end) in fragment_spans(text) {
                if self.is_indexed(&bytes[start..end]) {
                    cover(start, end);
                }
            }
        }
    }
}

/// The forms of `value` that text may carry instead of the value itself,
/// other than the value (each once).
fn derived_forms(value: &str) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    let mut push = |form: String| {
        if form != value && !forms.contains(&form) {
            forms.push(form);
        }
    };
    // URL encodings, as the `url` crate writes them (the host's traces of
    // requested URLs). Even a value of RFC 3986 unreserved characters has
    // one: form encoding writes `~` as `%7E` (forms equal to the value are
    // dropped by `push`).
    if let Ok(mut url) = url::Url::parse("http://h/") {
        url.set_query(Some(value));
        push(url.query().unwrap_or_default().to_string());
        url.set_path(value);
        push(url.path().trim_start_matches('/').to_string());
        if url.set_password(Some(value)).is_ok() {
            push(url.password().unwrap_or_default().to_string());
        }
        push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    }
    // Escaped, as in `{:?}` and JSON strings.
    let debug = format!("{value:?}");
    push(debug[1..debug.len() - 1].to_string());
    if let Ok(json) = serde_json::to_string(value) {
        push(json[1..json.len() - 1].to_string());
    }
    // base64, standard and URL-safe, at each alignment: the characters
    // that depend on the value's bytes only.
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(value.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let first = (8 * offset).div_ceil(6);
        let last = (8 * bytes.len() / 6).min(encoded.len());
        if last > first {
            let core = &encoded[first..last];
            push(core.to_string());
            push(core.replace('+', "-").replace('/', "_"));
        }
    }
    forms
}

/// The byte spans of every run of [`MIN_FRAGMENT_CHARS`] characters of
/// `text`, in order.
fn fragment_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    (0..bounds.len().saturating_sub(MIN_FRAGMENT_CHARS))
        .map(move |i| (bounds[i], bounds[i + MIN_FRAGMENT_CHARS]))
}

/// Every fragment of [`MIN_FRAGMENT_CHARS`] characters of `secret`: what
/// redaction removes wherever it appears (tests search outputs for them).
pub fn fragments(secret: &str) -> impl Iterator<Item = &str> {
    fragment_spans(secret).map(move |(start, end)| &secret[start..end])
}

/// The prefilter bit of a window: its first two bytes.
#[inline]
fn pair_index(window: &[u8]) -> usize {
    (usize::from(window[0]) << 8) | usize::from(window[1])
}

/// A 64-bit fingerprint of a window's bytes (already mixed: the set uses it
/// as its hash). A collision only redacts more.
#[inline]
fn fingerprint(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    // splitmix64's finaliser: every output bit depends on every input bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// A hasher for keys that are already well-mixed `u64`s (fingerprints).
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; fold anything else in anyway.
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The secret values handed to one run so far, indexed for redaction and
/// shared with every capability that sends guest text out of the run while
/// it is still going (the `log` lines forwarded to the host's own log), and
/// with the runtime, which redacts the run's result with it.
#[derive(Debug, Clone, Default)]
pub struct Revealed(Arc<RwLock<Redactor>>);

impl Revealed {
    /// Redact every fragment of the revealed values from every string of
    /// `result` the guest could have written (see
    /// [`CheckResult::redact_with`]); nothing to do when none was revealed.
    pub fn redact_result(&self, result: &mut CheckResult) {
        let redactor = self.redactor();
        if !redactor.is_empty() {
            result.redact_with(|s| redactor.redact(s));
        }
    }

    /// Remember `value` as revealed: from now on it is redacted.
    pub fn add(&self, value: &str) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).add(value);
    }

    /// The values, in the order they were first revealed.
    pub fn values(&self) -> Vec<String> {
        self.redactor().values().to_vec()
    }

    /// The redaction index, for redacting several texts under one lock.
    pub fn redactor(&self) -> RwLockReadGuard<'_, Redactor> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// `text` with every fragment of a revealed value redacted (see
    /// [`Redactor::redact`]).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redactor().redact(text)
    }
}

/// Per-run secrets state.
#[derive(Debug)]
pub struct SecretsState {
    granted: Vec<(String, SecretSource)>,
    revealed: Revealed,
    /// A replay reads no secret: a granted one reads as [`REDACTED`].
    tape: super::tape::Tape,
}

impl SecretsState {
    /// Grant exactly these secrets.
    pub fn new(granted: &[(String, SecretSource)]) -> Self {
        SecretsState {
            granted: granted.to_vec(),
            revealed: Revealed::default(),
            tape: Default::default(),
        }
    }

    /// The same, under the run's tape: replaying, the secrets the recorded
    /// run was granted read as [`REDACTED`] (as the cassette has them), and
    /// no source is read.
    pub fn with_tape(mut self, tape: super::tape::Tape) -> Self {
        self.tape = tape;
        self
    }

    /// Read the secret called `name`, if granted.
    pub fn read(&mut self, name: &str) -> Result<String, wit::SecretError> {
        match self.tape.replay_grants_secret(name) {
            Some(true) => return Ok(REDACTED.to_string()),
            Some(false) => {
                return Err(wit::SecretError::NotGranted(format!(
                    "secret `{name}` was not granted to the recorded run"
                )));
            }
            None => {}
        }
        let Some((_, source)) = self.granted.iter().find(|(n, _)| n == name) else {
            return Err(wit::SecretError::NotGranted(format!(
                "secret `{name}` is not granted to this check"
            )));
        };
        let value = read_source(source).map_err(wit::SecretError::Unavailable)?;
        self.revealed.add(&value);
        Ok(value)
    }

    /// Every value handed to the guest during this run, indexed for
    /// redaction: a handle that sees the values revealed later too, to share
    /// with capabilities that redact.
    pub fn revealed(&self) -> Revealed {
        self.revealed.clone()
    }
}

/// Read a secret's value from its source. Errors name the source, never the value.
pub fn read_source(source: &SecretSource) -> Result<String, String> {
    source.read()
}

/// Replace every `{{secret.NAME}}` in the config values with the secret's
/// value, reading it through `secrets` (so only granted secrets resolve and
/// every value read is remembered for redaction). Errors name the key and
/// the secret, never a value.
pub fn expand_config(
    config: &[(String, String)],
    secrets: &mut SecretsState,
) -> Result<Vec<(String, String)>, String> {
    config
        .iter()
        .map(|(key, value)| {
            let mut expanded = value.clone();
            for name in references(value) {
                let secret = secrets.read(name).map_err(|e| match e {
                    wit::SecretError::NotGranted(m) | wit::SecretError::Unavailable(m) => {
                        format!("config key `{key}` refers to {{{{secret.{name}}}}}: {m}")
                    }
                })?;
                expanded = expanded.replace(&format!("{{{{secret.{name}}}}}"), &secret);
            }
            Ok((key.clone(), expanded))
        })
        .collect()
}

impl wit::Host for SecretsState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, wit::SecretError>> {
        Ok(self.read(&name))
    }
}

/// Register the `secrets` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<SecretsState>>(linker, |s| &mut s.caps().secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_secrets_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "hunter2\n").unwrap();
        let mut s = SecretsState::new(&[("token".into(), SecretSource::File(file))]);
        assert_eq!(s.read("token").unwrap(), "hunter2");
        assert!(matches!(
            s.read("other"),
            Err(wit::SecretError::NotGranted(_))
        ));
        assert_eq!(s.revealed().values(), ["hunter2".to_string()]);
    }

    #[test]
    fn references_are_found_in_order() {
        assert_eq!(references("Bearer {{secret.token}}"), ["token"]);
        assert_eq!(references("{{secret.a}}:{{secret.b}}"), ["a", "b"]);
        assert!(references("{{secret.unclosed").is_empty());
        assert!(references("no refs").is_empty());
    }

    #[test]
    fn config_references_expand_only_for_granted_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t0k3n").unwrap();
        let mut s = SecretsState::new(&[("token".into(), SecretSource::File(file))]);
        let config = vec![
            (
                "headers.Authorization".to_string(),
                "Bearer {{secret.token}}".to_string(),
            ),
            ("plain".to_string(), "value".to_string()),
        ];
        let expanded = expand_config(&config, &mut s).unwrap();
        assert_eq!(expanded[0].1, "Bearer t0k3n");
        assert_eq!(expanded[1].1, "value");
        assert_eq!(s.revealed().values(), ["t0k3n".to_string()]);

        let bad = vec![("k".to_string(), "{{secret.other}}".to_string())];
        let err = expand_config(&bad, &mut s).unwrap_err();
        assert!(
            err.contains("config key `k`") && err.contains("other"),
            "{err}"
        );
        assert!(!err.contains("t0k3n"));
    }

    #[test]
    fn missing_source_is_unavailable_and_names_it() {
        let mut s = SecretsState::new(&[(
            "t".into(),
            SecretSource::Env("VANTAGE_TEST_SURELY_UNSET_VAR".into()),
        )]);
        match s.read("t") {
            Err(wit::SecretError::Unavailable(m)) => {
                assert!(m.contains("VANTAGE_TEST_SURELY_UNSET_VAR"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The first fragment of `secret` of [`MIN_FRAGMENT_CHARS`] characters
    /// found in `text`.
    fn leak<'a>(text: &str, secret: &'a str) -> Option<&'a str> {
        fragments(secret).find(|fragment| text.contains(fragment))
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    /// The case: an excerpt cut the secret at some point and added
    /// `…`; whatever the cut, no fragment of 6 characters is left, and a cut
    /// leaving fewer than 6 keeps them (nothing else to match).
    #[test]
    fn a_secret_cut_at_any_point_loses_every_fragment() {
        let redactor = Redactor::new([JWT]);
        for (cut, _) in JWT.char_indices().chain(std::iter::once((JWT.len(), ' '))) {
            let text = format!("got \"Bearer {}…\"", &JWT[..cut]);
            let redacted = redactor.redact(&text);
            assert_eq!(leak(&redacted, JWT), None, "cut at {cut}: {redacted}");
            if cut >= MIN_FRAGMENT_CHARS {
                assert_eq!(redacted, "got \"Bearer [redacted]…\"", "cut at {cut}");
            } else {
                assert_eq!(redacted, text);
            }
        }
    }

    #[test]
    fn prefixes_suffixes_and_middles_are_redacted_and_runs_merge() {
        let secret = "correct-horse-battery-staple";
        let redactor = Redactor::new([secret]);
        assert_eq!(redactor.redact("a correct-hor b"), "a [redacted] b");
        assert_eq!(redactor.redact("a ery-staple b"), "a [redacted] b");
        assert_eq!(redactor.redact("a horse-bat b"), "a [redacted] b");
        assert_eq!(
            redactor.redact("correct-horse-battery-staplecorrect-horse"),
            "[redacted]"
        );
        // Pieces shorter than 6 characters are left; text not from the
        // secret is untouched and borrowed.
        assert_eq!(redactor.redact("staple"), "[redacted]");
        assert_eq!(redactor.redact("taple horse"), "taple horse");
        assert!(matches!(
            redactor.redact("nothing to see"),
            Cow::Borrowed("nothing to see")
        ));
    }

    #[test]
    fn a_short_secret_is_redacted_whole_only() {
        let redactor = Redactor::new(["pin42", "correct-horse"]);
        assert_eq!(redactor.redact("pin42 pin4 horse"), "[redacted] pin4 horse");
        // Adjacent matches of both kinds make one stretch.
        assert_eq!(redactor.redact("pin42correct-h"), "[redacted]");
    }

    #[test]
    fn non_ascii_secrets_and_text_are_redacted_by_character() {
        let secret = "pässwörd-ünïcödé-😀-Ωmega";
        let redactor = Redactor::new([secret]);
        for (cut, _) in secret.char_indices().skip(MIN_FRAGMENT_CHARS) {
            let text = format!("é {}… ü", &secret[..cut]);
            let redacted = redactor.redact(&text);
            assert_eq!(redacted, "é [redacted]… ü", "cut at {cut}");
        }
        assert_eq!(redactor.redact("x ünïcödé y"), "x [redacted] y");
    }

    /// A secret of RFC 3986 unreserved characters only still has a URL
    /// form: form encoding writes `~` as `%7E` (found by the randomized
    /// test in tests/e2e/redaction.rs).
    #[test]
    fn a_tilde_secret_is_redacted_form_encoded_too() {
        let secret = "abcdef~ghijkl";
        let redactor = Redactor::new([secret]);
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert_eq!(form, "abcdef%7Eghijkl");
        assert_eq!(
            redactor.redact(&format!("GET /?token={form}")),
            "GET /?token=[redacted]"
        );
    }

    /// The forms other text takes of a secret: basic authentication's base64
    /// of `user:password` (any user name, so any alignment), URL encodings
    /// and escapes.
    #[test]
    fn derived_forms_are_redacted() {
        let secret = "p@ss w0rd/with?odd#chars\"and\\quotes";
        let redactor = Redactor::new([secret]);
        let b64 = base64::engine::general_purpose::STANDARD;
        for user in ["u", "ab", "abc", "admin", "operator"] {
            let encoded = b64.encode(format!("{user}:{secret}"));
            let header = format!("Basic {encoded}");
            let redacted = redactor.redact(&header);
            // Only the characters that depend on the user name (and the
            // last, partial one) are left.
            let prefix = (8 * (user.len() + 1)).div_ceil(6);
            let core = &encoded[prefix..(8 * (user.len() + 1 + secret.len())) / 6];
            assert_eq!(leak(&redacted, core), None, "{user}: {redacted}");
            assert!(
                redacted.len() <= "Basic ".len() + prefix + 4 + REDACTED.len(),
                "{user}: {redacted}"
            );
        }
        let mut url = url::Url::parse("http://example.test/").unwrap();
        url.query_pairs_mut().append_pair("token", secret);
        url.set_path(secret);
        let redacted = redactor.redact(url.as_str());
        assert_eq!(redacted, "http://example.test/[redacted]?token=[redacted]");
        let debug = format!("got {:?}…", &secret[..30]);
        assert_eq!(redactor.redact(&debug), "got \"[redacted]\"…");
        let json = serde_json::json!({ "password": secret }).to_string();
        assert_eq!(redactor.redact(&json), "{\"password\":\"[redacted]\"}");
    }

    #[test]
    fn indexes_are_built_once_per_value_and_never_shared_between_values() {
        let a = WindowIndex::of("first-secret-value");
        assert!(Arc::ptr_eq(&a, &WindowIndex::of("first-secret-value")));
        let b = WindowIndex::of("other-secret-value");
        assert!(!Arc::ptr_eq(&a, &b));
        let redactor = Redactor::new(["other-secret-value"]);
        assert_eq!(redactor.redact("x first-secr"), "x first-secr");
        assert_eq!(redactor.redact("x other-secr"), "x [redacted]");
    }

    #[test]
    fn values_never_show_in_debug_output() {
        let revealed = Revealed::default();
        revealed.add("hunter2-the-password");
        let debug = format!("{revealed:?}");
        assert!(!debug.contains("hunter"), "{debug}");
        assert_eq!(revealed.values(), ["hunter2-the-password"]);
    }

    /// Micro-benchmark of redaction's cost per run (prints the figures; the
    /// assertions are on the result, not on time): indexing a 108-character
    /// token (the issue's), then redacting a typical result's texts, and
    /// 64 KiB of log text. Run it optimised for figures that mean something:
    /// `cargo test -p vantage --lib --config 'profile.dev.package.vantage.opt-level=3' redaction_cost -- --nocapture`.
    #[test]
    fn redaction_cost_per_run() {
        use std::time::Instant;
        const RUNS: u32 = 2_000;
        let token = &JWT[..108];
        // A typical failing HTTP check's texts: one carries a cut token.
        let mut texts: Vec<String> = (0..24)
            .map(|i| {
                format!("assertion {i}: got 200 OK in 12 ms from 127.0.0.1:8080, body 1.2 KiB")
            })
            .collect();
        texts.push(format!("got \"Bearer {}…\"", &token[..70]));
        let bytes: usize = texts.iter().map(String::len).sum();

        let t = Instant::now();
        let mut redacted = 0;
        for _ in 0..RUNS {
            let revealed = Revealed::default();
            revealed.add(token);
            let redactor = revealed.redactor();
            for text in &texts {
                if let Cow::Owned(_) = redactor.redact(text) {
                    redacted += 1;
                }
            }
        }
        let per_run = t.elapsed() / RUNS;
        assert_eq!(redacted, RUNS);

        // Building a value's index (once per value per process: runs after
        // the first take it from the cache, as the loop above did).
        let t = Instant::now();
        for _ in 0..RUNS / 10 {
            std::hint::black_box(WindowIndex::build(token));
        }
        let index = t.elapsed() / (RUNS / 10);

        let log: String = (0..1024)
            .map(|i| format!("line {i:04} of a chatty check: status ok, 3 items\n"))
            .collect::<String>()
            .chars()
            .take(64 * 1024)
            .collect();
        let redactor = Redactor::new([token]);
        let t = Instant::now();
        for _ in 0..20 {
            assert!(matches!(
                redactor.redact(std::hint::black_box(&log)),
                Cow::Borrowed(_)
            ));
        }
        let per_kib = t.elapsed() / 20 / 64;
        println!(
            "redaction, one 108-char secret: {per_run:?} per run ({} texts, {bytes} bytes; \
             index cached); building the index once: {index:?}; {per_kib:?} per KiB of text \
             without a match",
            texts.len()
        );
    }
}
