//! The markdown the benchmark prints (and BENCHMARKS.md is made of).

use std::fmt::Write as _;

/// One target of issue 5 and whether this run met it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What is measured, e.g. "per-run overhead p50".
    pub what: String,
    /// The target, e.g. "≤ 20 µs".
    pub target: String,
    /// The figure measured, e.g. "41 µs".
    pub figure: String,
    /// Met or missed.
    pub met: bool,
}

impl Verdict {
    /// A verdict.
    pub fn new(what: &str, target: &str, figure: String, met: bool) -> Verdict {
        Verdict {
            what: what.into(),
            target: target.into(),
            figure,
            met,
        }
    }
}

/// One measurement's part of the report.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `## 1. Per-run overhead`
    pub title: String,
    /// Markdown: what was done, tables, notes.
    pub body: String,
    /// The targets it decides.
    pub verdicts: Vec<Verdict>,
}

impl Section {
    /// A section with a title.
    pub fn new(title: &str) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }

    /// Append a paragraph.
    pub fn para(&mut self, text: impl AsRef<str>) {
        let _ = write!(self.body, "{}\n\n", text.as_ref().trim_end());
    }

    /// Append a table.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.body, "| {} |", header.join(" | "));
        let _ = writeln!(
            self.body,
            "|{}",
            header.iter().map(|_| "---|").collect::<String>()
        );
        for row in rows {
            let _ = writeln!(self.body, "| {} |", row.join(" | "));
        }
        self.body.push('\n');
    }

    /// Record a verdict.
    pub fn verdict(&mut self, v: Verdict) {
        self.verdicts.push(v);
    }

    /// The section as markdown, verdicts last.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n{}", self.title, self.body);
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "- **{}** — {}: target {}, measured {}.",
                if v.met { "MET" } else { "MISSED" },
                v.what,
                v.target,
                v.figure
            );
        }
        if !self.verdicts.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// The whole report: header, a table of every target, then each section.
pub fn document(header: &str, sections: &[Section]) -> String {
    let mut out = String::from(header);
    let verdicts: Vec<&Verdict> = sections.iter().flat_map(|s| &s.verdicts).collect();
    if !verdicts.is_empty() {
        out.push_str("## Targets\n\n| Measurement | Target | Measured | |\n|---|---|---|---|\n");
        for v in verdicts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                v.what,
                v.target,
                v.figure,
                if v.met { "met" } else { "**missed**" }
            );
        }
        out.push('\n');
    }
    for s in sections {
        out.push_str(&s.markdown());
    }
    out
}
