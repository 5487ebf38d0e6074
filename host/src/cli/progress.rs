//! Progress of registry transfers for `vantage push` and `pull`: a bar on
//! stderr when it is a terminal, one plain line per transfer otherwise (a
//! log or CI output gets no control characters).

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use vantage_registry::Progress;

/// The progress reporter for this process's stderr.
pub fn stderr() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(Bar::default())
    } else {
        Arc::new(Lines)
    }
}

/// A bar per transfer.
#[derive(Default)]
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{msg} [{wide_bar}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_string());
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// One line when a transfer starts (not a terminal).
struct Lines;

impl Progress for Lines {
    fn start(&self, what: &str, total: u64) {
        errln!("{what} ({})", indicatif::HumanBytes(total));
    }

    fn advance(&self, _: u64) {}

    fn finish(&self) {}
}
