//! Small pure helpers: durations and sizes.

use std::time::Duration;

/// Parse a human duration such as `500ms`, `2s`, `1.5s`, `1m30s`, `2h` or `7d`.
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`, `w`. Components may
/// be separated by spaces. A bare number is rejected (is `5` seconds or
/// milliseconds?) except `0`.
///
/// ```
/// use std::time::Duration;
/// use vantage_sdk::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("1.5 s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".to_string());
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration `{text}`: expected a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: bad number"))?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: missing unit (e.g. `500ms`, `2s`, `1m`)"
                ));
            }
            unit => return Err(format!("invalid duration `{text}`: unknown unit `{unit}`")),
        };
        total += number * seconds_per_unit;
        rest = rest[unit_len..].trim_start();
    }
    Duration::try_from_secs_f64(total)
        .map_err(|_| format!("invalid duration `{text}`: out of range"))
}

/// Format a duration given in milliseconds for humans: `0.42 ms`, `12.3 ms`,
/// `450 ms`, `1.25 s`, `2 min 5 s`.
///
/// ```
/// use vantage_sdk::format_duration;
/// assert_eq!(format_duration(12.34), "12.3 ms");
/// assert_eq!(format_duration(1250.0), "1.25 s");
/// ```
pub fn format_duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return format!("{ms} ms");
    }
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        let s = format!("{:.2}", ms / 1000.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s} s")
    } else {
        let total_s = (ms / 1000.0).round() as u64;
        format!("{} min {} s", total_s / 60, total_s % 60)
    }
}

/// Milliseconds of a [`Duration`], as the `f64` the WIT types use.
pub(crate) fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Saturating conversion of a [`Duration`] to whole milliseconds.
pub(crate) fn duration_ms_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Parse a size in bytes such as `512`, `64KiB`, `1 MiB` or `2MB`.
///
/// Units (any case): `B`, `KB` (1000), `KiB` (1024), `MB`, `MiB`, `GB`,
/// `GiB`; a bare number is bytes. The error never repeats the text (a
/// configuration value may be a secret).
///
/// ```
/// use vantage_sdk::parse_size;
/// assert_eq!(parse_size("512"), Ok(512));
/// assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
/// assert_eq!(parse_size("2 MB"), Ok(2_000_000));
/// assert!(parse_size("1 parsec").is_err());
/// assert!(parse_size("MiB").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let number: u64 = t[..split]
        .parse()
        .map_err(|_| "expected a size such as `512`, `64KiB` or `1MiB`".to_string())?;
    let multiplier: u64 = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err("unknown unit: write B, KB, KiB, MB, MiB, GB or GiB".to_string()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| "size too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h 2m 3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("12").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("3 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("1..2s").is_err());
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(0.421), "0.42 ms");
        assert_eq!(format_duration(12.34), "12.3 ms");
        assert_eq!(format_duration(450.4), "450 ms");
        assert_eq!(format_duration(1000.0), "1 s");
        assert_eq!(format_duration(1250.0), "1.25 s");
        assert_eq!(format_duration(1500.0), "1.5 s");
        assert_eq!(format_duration(125_000.0), "2 min 5 s");
    }
}
