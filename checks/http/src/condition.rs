//! JSON body conditions: `expect.json.<path> = "<condition>"`.
//!
//! The path is a JSON pointer (`/data/0/id`), a dotted path (`data.0.id`) or
//! `$`, the document root (`expect.json."$" = "len > 0"`). The condition is
//! one of:
//!
//! | condition        | holds when the value at the path…                           |
//! |------------------|-------------------------------------------------------------|
//! | `ok`             | equals `ok` (loosely: `"200"` equals `200`, `"true"` `true`) |
//! | `== ok`          | the same; use it when the literal starts with an operator   |
//! | `!= error`       | exists and does not equal `error`                           |
//! | `> 5`, `>= 5`, `< 5`, `<= 5` | is a number (or numeric string) compared to 5   |
//! | `=~ ^v1\.`, `!~ x` | (as text) matches / does not match the regular expression |
//! | `len > 0` …      | is an array, object or string whose length compares so     |
//! | (empty)          | exists                                                       |
//! | `absent`         | does not exist (write `== absent` for the literal)          |

use std::fmt;

use vantage_sdk::json_loose_eq;
use vantage_sdk::regex_lite::Regex;
use vantage_sdk::serde_json::Value;

/// One parsed condition about one JSON path.
#[derive(Debug, Clone)]
pub struct JsonCondition {
    /// RFC 6901 pointer.
    pub pointer: String,
    /// Compare the length of the value instead of the value.
    len: bool,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Exists,
    Absent,
    Eq(Value),
    Ne(Value),
    Cmp(Cmp, f64),
    Matches(Regex),
    NotMatches(Regex),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }
}

/// Operators, longest first so that `>=` is not read as `>`.
const OPERATORS: [&str; 8] = ["==", "!=", ">=", "<=", "=~", "!~", ">", "<"];

impl JsonCondition {
    /// Parse the key suffix after `expect.json.` and the configured condition.
    pub fn parse(path: &str, condition: &str) -> Result<Self, String> {
        let pointer = to_pointer(path);
        let text = condition.trim();
        if text.is_empty() {
            return Ok(Self {
                pointer,
                len: false,
                op: Op::Exists,
            });
        }
        if text == "absent" {
            return Ok(Self {
                pointer,
                len: false,
                op: Op::Absent,
            });
        }
        let (len, rest) = match text.strip_prefix("len") {
            Some(rest) if starts_with_operator(rest.trim_start()) => (true, rest.trim_start()),
            _ => (false, text),
        };
        let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
            // No operator: a literal to compare with.
            return Ok(Self {
                pointer,
                len: false,
                op: Op::Eq(Value::String(text.to_string())),
            });
        };
        let operand = rest[op.len()..].trim();
        let number = || {
            operand.parse::<f64>().map_err(|_| {
                format!(
                    "`{op}` needs a number, got `{operand}` (to compare with a literal that starts with an operator, write `== {text}`)"
                )
            })
        };
        let regex = || Regex::new(operand).map_err(|e| format!("invalid regex `{operand}`: {e}"));
        let op = match (*op, len) {
            ("==", false) => Op::Eq(Value::String(operand.to_string())),
            ("!=", false) => Op::Ne(Value::String(operand.to_string())),
            ("==", true) => Op::Cmp(Cmp::Eq, number()?),
            ("!=", true) => Op::Cmp(Cmp::Ne, number()?),
            (">", _) => Op::Cmp(Cmp::Gt, number()?),
            (">=", _) => Op::Cmp(Cmp::Ge, number()?),
            ("<", _) => Op::Cmp(Cmp::Lt, number()?),
            ("<=", _) => Op::Cmp(Cmp::Le, number()?),
            ("=~", false) => Op::Matches(regex()?),
            ("!~", false) => Op::NotMatches(regex()?),
            (op, _) => return Err(format!("`len` cannot be combined with `{op}`")),
        };
        Ok(Self { pointer, len, op })
    }

    /// Evaluate against a parsed document: whether it holds, and what was
    /// observed.
    pub fn evaluate(&self, doc: &Value) -> (bool, String) {
        let shown_pointer = show(&self.pointer);
        let Some(value) = doc.pointer(&self.pointer) else {
            let absent = matches!(self.op, Op::Absent);
            return (absent, format!("{shown_pointer} not found"));
        };
        let shown = render(value);
        if self.len {
            let Some(len) = length(value) else {
                return (false, format!("got {shown}, which has no length"));
            };
            let Op::Cmp(cmp, n) = self.op else {
                unreachable!("parse only builds comparisons with `len`")
            };
            return (cmp.holds(len as f64, n), format!("length {len}"));
        }
        let passed = match &self.op {
            Op::Exists => true,
            Op::Absent => false,
            Op::Eq(expected) => json_loose_eq(value, expected),
            Op::Ne(expected) => !json_loose_eq(value, expected),
            Op::Cmp(cmp, n) => match as_number(value) {
                Some(actual) => cmp.holds(actual, *n),
                None => return (false, format!("got {shown}, which is not a number")),
            },
            Op::Matches(re) => re.is_match(&as_text(value)),
            Op::NotMatches(re) => !re.is_match(&as_text(value)),
        };
        (passed, format!("got {shown}"))
    }
}

impl fmt::Display for JsonCondition {
    /// The assertion name, e.g. `json /status == "ok"`, `json len(/items) > 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = show(&self.pointer);
        match &self.op {
            Op::Exists => write!(f, "json {p} exists"),
            Op::Absent => write!(f, "json {p} absent"),
            Op::Eq(v) => write!(f, "json {p} == {v}"),
            Op::Ne(v) => write!(f, "json {p} != {v}"),
            Op::Cmp(cmp, n) if self.len => write!(f, "json len({p}) {} {n}", cmp.symbol()),
            Op::Cmp(cmp, n) => write!(f, "json {p} {} {n}", cmp.symbol()),
            Op::Matches(re) => write!(f, "json {p} matches /{re}/"),
            Op::NotMatches(re) => write!(f, "json {p} does not match /{re}/"),
        }
    }
}

fn starts_with_operator(text: &str) -> bool {
    OPERATORS.iter().any(|op| text.starts_with(op))
}

/// The pointer as shown in assertion names: `$` for the root.
fn show(pointer: &str) -> &str {
    if pointer.is_empty() { "$" } else { pointer }
}

/// `/a/b` stays as is; `a.b` becomes `/a/b` (escaping `~` and `/` in
/// segments); `$` (or nothing) is the root, the empty pointer.
fn to_pointer(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    if path.is_empty() || path == "$" {
        return String::new();
    }
    path.split('.')
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn length(value: &Value) -> Option<usize> {
    match value {
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        Value::String(s) => Some(s.chars().count()),
        _ => None,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        None => text,
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_sdk::serde_json::json;

    fn eval(path: &str, cond: &str, doc: &Value) -> (String, bool, String) {
        let c = JsonCondition::parse(path, cond).unwrap();
        let (passed, detail) = c.evaluate(doc);
        (c.to_string(), passed, detail)
    }

    #[test]
    fn conditions() {
        let doc = json!({
            "status": "ok",
            "code": 200,
            "items": [1, 2, 3],
            "data": {"version": "1.4.2", "a/b": true},
            "ratio": "0.5"
        });
        let cases = [
            (
                "/status",
                "ok",
                "json /status == \"ok\"",
                true,
                "got \"ok\"",
            ),
            (
                "status",
                "== ok",
                "json /status == \"ok\"",
                true,
                "got \"ok\"",
            ),
            (
                "/status",
                "!= error",
                "json /status != \"error\"",
                true,
                "got \"ok\"",
            ),
            ("/code", "200", "json /code == \"200\"", true, "got 200"),
            ("/code", ">= 200", "json /code >= 200", true, "got 200"),
            ("/code", "<300", "json /code < 300", true, "got 200"),
            ("/code", "> 200", "json /code > 200", false, "got 200"),
            (
                "/ratio",
                "<= 0.5",
                "json /ratio <= 0.5",
                true,
                "got \"0.5\"",
            ),
            (
                "/status",
                "> 1",
                "json /status > 1",
                false,
                "got \"ok\", which is not a number",
            ),
            ("items", "len > 2", "json len(/items) > 2", true, "length 3"),
            (
                "/items",
                "len == 0",
                "json len(/items) == 0",
                false,
                "length 3",
            ),
            (
                "/code",
                "len > 0",
                "json len(/code) > 0",
                false,
                "got 200, which has no length",
            ),
            (
                "data.version",
                "=~ ^1\\.4\\.",
                "json /data/version matches /^1\\.4\\./",
                true,
                "got \"1.4.2\"",
            ),
            (
                "/data/version",
                "!~ beta",
                "json /data/version does not match /beta/",
                true,
                "got \"1.4.2\"",
            ),
            (
                "data.a/b",
                "true",
                "json /data/a~1b == \"true\"",
                true,
                "got true",
            ),
            ("/items/1", "", "json /items/1 exists", true, "got 2"),
            (
                "/missing",
                "",
                "json /missing exists",
                false,
                "/missing not found",
            ),
            (
                "/missing",
                "!= x",
                "json /missing != \"x\"",
                false,
                "/missing not found",
            ),
            (
                "/missing",
                "absent",
                "json /missing absent",
                true,
                "/missing not found",
            ),
            (
                "/status",
                "absent",
                "json /status absent",
                false,
                "got \"ok\"",
            ),
            (
                "/status",
                "== absent",
                "json /status == \"absent\"",
                false,
                "got \"ok\"",
            ),
            ("$", "len == 5", "json len($) == 5", true, "length 5"),
            ("$", "len > 0", "json len($) > 0", true, "length 5"),
            (
                "/status",
                "len",
                "json /status == \"len\"",
                false,
                "got \"ok\"",
            ),
        ];
        for (path, cond, name, passed, detail) in cases {
            assert_eq!(
                eval(path, cond, &doc),
                (name.to_string(), passed, detail.to_string()),
                "{path} {cond}"
            );
        }
    }

    #[test]
    fn bad_conditions_are_config_errors() {
        assert!(
            JsonCondition::parse("/a", "> many")
                .unwrap_err()
                .contains("== > many")
        );
        assert!(
            JsonCondition::parse("/a", "=~ (")
                .unwrap_err()
                .contains("invalid regex")
        );
        assert!(JsonCondition::parse("/a", "len =~ x").is_err());
        assert!(JsonCondition::parse("/a", "<html>").is_err());
        assert!(JsonCondition::parse("/a", "== <html>").is_ok());
    }
}
