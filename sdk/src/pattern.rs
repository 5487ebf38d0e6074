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
/// assert_eq!(outcome.assertions()[0].state, vantage_sdk::AssertionState::Pass);
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

/// `Pattern` for an engine whose `Regex` has `as_str`, `find` and `is_match`.
macro_rules! engine {
    ($feature:literal, $regex:ty) => {
        #[cfg(feature = $feature)]
        impl Pattern for $regex {
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
    };
}

engine!("regex", regex::Regex);
engine!("regex-lite", regex_lite::Regex);

/// The engine the `&str` assertions ([`body_matches`](crate::Expect::body_matches), …)
/// compile their pattern with: `regex` when its opt-in feature is on, else
/// `regex-lite` (the default).
#[cfg(feature = "regex")]
pub(crate) type Compiled = regex::Regex;
#[cfg(all(feature = "regex-lite", not(feature = "regex")))]
pub(crate) type Compiled = regex_lite::Regex;

/// Compile `pattern` with the [`Compiled`] engine.
#[cfg(any(feature = "regex", feature = "regex-lite"))]
pub(crate) fn compile(pattern: &str) -> Result<Compiled, String> {
    Compiled::new(pattern).map_err(|e| e.to_string())
}
