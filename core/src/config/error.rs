//! Configuration errors. Every one names the file, the line and column, and
//! the key: `vantage.toml:14:9: check "api-health": key `every`: invalid
//! duration "1x": expected a number followed by a unit like 30s, 1m, 2h`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration works, but probably not as meant.
    Warning,
}

/// One problem found in a configuration file, located to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The configuration file, as given.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Where in the file, e.g. `check "api-health"`, `[global]`,
    /// `[defaults]`; `None` at the top level.
    pub context: Option<String>,
    /// The key, e.g. `every`, `allow`, `secrets.token`; `None` when the
    /// problem is not about one key (a syntax error between keys).
    pub key: Option<String>,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: [warning: ][context: ][key `k`: ]message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(context) = &self.context {
            write!(f, "{context}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration; one diagnostic per problem, in
    /// file order. Display prints them one per line.
    #[error("{}", Lines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The problems found (empty for [`ConfigError::Read`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid(d) => d,
        }
    }
}

struct Lines<'a>(&'a [Diagnostic]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The text of a configuration file and its name, to turn byte spans into
/// diagnostics.
pub(super) struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// A diagnostic at `span`.
    pub fn diagnostic(
        &self,
        span: Range<usize>,
        severity: Severity,
        context: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = self.position(span.start);
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            context: context.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
            severity,
        }
    }

    /// A TOML error (syntax, unknown key, wrong type) as a diagnostic that
    /// keeps TOML's message. `doc` is the parsed document when the syntax is
    /// valid; it tells which key the error's span belongs to.
    pub fn toml_error(&self, err: &toml::de::Error, doc: Option<&DeTable<'_>>) -> Diagnostic {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        let (context, key) = match doc {
            Some(doc) => {
                let path = locate_in_table(doc, &span).unwrap_or_default();
                describe_path(doc, &path)
            }
            None => self.guess_from_line(span.start),
        };
        self.diagnostic(
            span,
            Severity::Error,
            context.as_deref(),
            key.as_deref(),
            message,
        )
    }

    /// For syntax errors, where no document exists: the key written on the
    /// error's line, and the section it is in (found from the headers above
    /// it), labelled like other errors (`check "api"`, key `config.method`).
    fn guess_from_line(&self, offset: usize) -> (Option<String>, Option<String>) {
        let (line_no, _) = self.position(offset);
        let lines: Vec<&str> = self.text.lines().collect();
        let line = lines.get(line_no - 1).copied().unwrap_or("");
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty() && !k.starts_with(['[', '#']))
            .map(|k| k.trim_matches(['"', '\'']).to_string());
        let above = &lines[..(line_no - 1).min(lines.len())];
        let header_of = |l: &str| {
            let l = l.split('#').next().unwrap_or("").trim();
            l.starts_with('[')
                .then(|| l.trim_matches(['[', ']']).trim().to_string())
        };
        let Some((at, header)) = above
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, l)| header_of(l).map(|h| (i, h)))
        else {
            return (None, key);
        };
        let sub = match header.as_str() {
            "check" => None,
            h => match h.strip_prefix("check.") {
                Some(sub) => Some(sub.to_string()),
                None => return (Some(format!("[{header}]")), key),
            },
        };
        // The check this line belongs to: the last `[[check]]` above, and the
        // name it sets.
        let checks: Vec<usize> = above[..=at]
            .iter()
            .enumerate()
            .filter(|(_, l)| header_of(l).as_deref() == Some("check") && l.contains("[["))
            .map(|(i, _)| i)
            .collect();
        let Some(&check_at) = checks.last() else {
            return (Some(format!("[{header}]")), key);
        };
        let name = lines[check_at + 1..]
            .iter()
            .take_while(|l| header_of(l).is_none())
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "name")
            .map(|(_, v)| v.trim().trim_matches(['"', '\'']));
        let key = match (sub, key) {
            (Some(sub), Some(k)) => Some(format!("{sub}.{k}")),
            (Some(sub), None) => Some(sub),
            (None, k) => k,
        };
        (Some(check_label(name, checks.len() - 1)), key)
    }
}

/// The label of the `index`-th check in messages: `check "name"` when it has
/// a string name, else `check #n` (1-based).
pub(super) fn check_label(name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) => format!("check {n:?}"),
        None => format!("check #{}", index + 1),
    }
}

/// A step in a path through the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start < outer.end && outer.start <= inner.start && inner.end <= outer.end
}

/// The path to the deepest key or value whose span holds `span`.
fn locate_in_table(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (key, value) in table.iter() {
        if covers(&key.span(), span) {
            return Some(vec![Seg::Key(key.get_ref().to_string())]);
        }
        if let Some(mut path) = locate_in_value(value, span) {
            path.insert(0, Seg::Key(key.get_ref().to_string()));
            return Some(path);
        }
    }
    None
}

fn locate_in_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Vec<Seg>> {
    match value.get_ref() {
        DeValue::Table(t) => {
            if let Some(path) = locate_in_table(t, span) {
                return Some(path);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(mut path) = locate_in_value(item, span) {
                    path.insert(0, Seg::Index(i));
                    return Some(path);
                }
            }
        }
        _ => {}
    }
    covers(&value.span(), span).then(Vec::new)
}

fn table_get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// The span of the value at `path` (keys into tables, indices into arrays),
/// or of the deepest part of it that exists.
pub(super) fn span_of(doc: &DeTable<'_>, path: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let mut value = table_get(doc, first)?;
    for seg in rest {
        let next = match value.get_ref() {
            DeValue::Table(t) => table_get(t, seg),
            DeValue::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => break,
        }
    }
    Some(value.span())
}

/// Context and key for a path: `check "name"` + `every`, `[global]` +
/// `location`, or no context + a top-level key.
fn describe_path(doc: &DeTable<'_>, path: &[Seg]) -> (Option<String>, Option<String>) {
    let join = |segs: &[Seg]| -> Option<String> {
        let mut out = String::new();
        for seg in segs {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        (!out.is_empty()).then_some(out)
    };
    match path {
        [Seg::Key(section), Seg::Index(i), rest @ ..] if section == "check" => {
            let name = table_get(doc, "check")
                .and_then(|checks| checks.get_ref().get(*i))
                .and_then(|check| check.get_ref().get("name"))
                .and_then(|name| name.get_ref().as_str());
            (Some(check_label(name, *i)), join(rest))
        }
        [Seg::Key(section), rest @ ..]
            if !rest.is_empty() && (section == "global" || section == "defaults") =>
        {
            (Some(format!("[{section}]")), join(rest))
        }
        _ => (None, join(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source {
            file: Path::new("v.toml"),
            text: "a = 1\nbé = 'x'\n\nc = 2",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(4), (1, 5));
        assert_eq!(src.position(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(src.position(12), (2, 6));
        assert_eq!(src.position(17), (4, 1));
        assert_eq!(src.position(1000), (4, 6));
    }

    #[test]
    fn diagnostics_display_file_line_context_and_key() {
        let src = Source {
            file: Path::new("vantage.toml"),
            text: "x\ny",
        };
        let d = src.diagnostic(
            2..3,
            Severity::Error,
            Some("check \"a\""),
            Some("every"),
            "bad",
        );
        assert_eq!(
            d.to_string(),
            "vantage.toml:2:1: check \"a\": key `every`: bad"
        );
        let w = src.diagnostic(0..1, Severity::Warning, None, Some("k"), "hm");
        assert_eq!(w.to_string(), "vantage.toml:1:1: warning: key `k`: hm");
        let e = ConfigError::Invalid(vec![d, w]);
        assert_eq!(e.to_string().lines().count(), 2);
        assert_eq!(e.diagnostics().len(), 2);
    }

    #[test]
    fn check_labels() {
        assert_eq!(check_label(Some("api"), 0), "check \"api\"");
        assert_eq!(check_label(None, 2), "check #3");
    }
}
