//! Compiled regular expressions, as the `*_regex` assertions take them.

use std::ops::Range;

/// A compiled regular expression that [`Expect`](crate::Expect)'s `*_regex`
/// assertions ([`body_matches_regex`](crate::Expect::body_matches_regex),
/// [`body_not_matches_regex`](crate::Expect::body_not_matches_regex),
/// [`header_matches_regex`](crate::Expect::header_matches_regex)) accept.
///
/// Implemented for `regex::Regex` (feature `regex`) and `regex_lite::Regex`
/// (feature `regex-lite`); implement it to plug in another engine.
///
/// Why compile once: every run of a check starts from a fresh instance, so
/// nothing survives between runs and every compile is paid on every run —
/// hundreds of microseconds for a small pattern with `regex` in Wasm, far
/// less with `regex-lite`. Compile each configured pattern once (for example
/// while validating the configuration, which also reports a bad pattern
/// early, under its key) and hand the compiled value to the assertions.
///
/// ```
/// # #[cfg(feature = "regex-lite")] {
/// use vantage_sdk::{Outcome, http::Response, regex_lite::Regex};
///
/// let status = Regex::new(r#""status":\s*"ok""#).unwrap();
/// let response = Response::mock(200, &[], r#"{"status": "ok"}"#);
/// let mut outcome = Outcome::new();
/// outcome.expect(&response).body_matches_regex(&status);
/// assert_eq!(outcome.assertions()[0].name, r#"body matches /"status":\s*"ok"/"#);
/// assert!(outcome.assertions()[0].passed);
/// # }
/// ```
pub trait Pattern {
    /// The pattern as written (shown in assertion names).
    fn pattern(&self) -> &str;

    /// The byte range of the leftmost-first match in `haystack`, if any.
    fn find_range(&self, haystack: &str) -> Option<Range<usize>>;

    /// Whether `haystack` contains a match.
    fn matches(&self, haystack: &str) -> bool {
        self.find_range(haystack).is_some()
    }
}

impl<P: Pattern + ?Sized> Pattern for &P {
    fn pattern(&self) -> &str {
        (**self).pattern()
    }

    fn find_range(&self, haystack: &str) -> Option<Range<usize>> {
        (**self).find_range(haystack)
    }

    fn matches(&self, haystack: &str) -> bool {
        (**self).matches(haystack)
    }
}

#[cfg(feature = "regex")]
impl Pattern for regex::Regex {
    fn pattern(&self) -> &str {
        self.as_str()
    }

    fn find_range(&self, haystack: &str) -> Option<Range<usize>> {
        self.find(haystack).map(|m| m.range())
    }

    fn matches(&self, haystack: &str) -> bool {
        self.is_match(haystack)
    }
}

#[cfg(feature = "regex-lite")]
impl Pattern for regex_lite::Regex {
    fn pattern(&self) -> &str {
        self.as_str()
    }

    fn find_range(&self, haystack: &str) -> Option<Range<usize>> {
        self.find(haystack).map(|m| m.range())
    }

    fn matches(&self, haystack: &str) -> bool {
        self.is_match(haystack)
    }
}

/// The engine the `&str` assertions ([`body_matches`](crate::Expect::body_matches), …)
/// compile their pattern with: `regex` when its opt-in feature is on, else
/// `regex-lite` (the default).
#[cfg(feature = "regex")]
pub(crate) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| e.to_string())
}

#[cfg(all(feature = "regex-lite", not(feature = "regex")))]
pub(crate) fn compile(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(pattern).map_err(|e| e.to_string())
}
