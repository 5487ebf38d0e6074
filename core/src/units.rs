//! Human-readable quantities for messages and reports: plain functions at the
//! bottom of the crate, used by the configuration's errors and the restore
//! reports alike.

/// `seconds` for humans: `850 ms`, `42.1 s`, `12 m 5 s`, `3 h 20 m`.
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds.round() as u64;
        format!("{} m {} s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0).round() as u64;
        format!("{} h {} m", m / 60, m % 60)
    }
}

/// An error and its sources, `: `-joined, each source's text left out when
/// the text so far already holds it (many errors repeat their source in
/// their own message). Clients' `Display` is often terse ("error sending
/// request"); the cause is in the chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_shows_each_cause_once() {
        let io = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(io);
        // The outer error's own text already holds its source's.
        assert_eq!(error_chain(&outer), "connection refused");
        #[derive(Debug)]
        struct Terse(std::io::Error);
        impl std::fmt::Display for Terse {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Terse {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let terse = Terse(std::io::Error::other("connection refused"));
        assert_eq!(
            error_chain(&terse),
            "error sending request: connection refused"
        );
    }
}
