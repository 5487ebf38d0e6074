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
