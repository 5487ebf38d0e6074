//! Per-run resource limits: memory (with a record of the attempt that broke
//! the cap, so the result can name it) and CPU time (a [`CpuMeter`] fed by
//! [`Metered`], read by the epoch callback).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// The CPU time one run has used so far: the time its future spent being
/// polled on a guest thread (the guest computing, and the host calls it
/// makes doing their synchronous work: parsing, TLS records, copying),
/// including the poll going on now.
///
/// Why poll time and not a count of epoch ticks: a guest sees an epoch tick
/// whenever the epoch has moved since its last yield, also when it spent
/// that time waiting in the run queue behind other guests, so ticks count
/// the waiting of a busy machine against every check. Time inside `poll` is
/// time the run held a thread; it is CPU time unless the kernel takes the
/// thread away (an overloaded machine), and it costs two clock reads per
/// poll (a few polls per run of a well-behaved check).
#[derive(Debug)]
pub struct CpuMeter {
    origin: Instant,
    /// Nanoseconds of finished polls.
    busy: AtomicU64,
    /// When the poll going on began (nanoseconds since `origin`), or
    /// [`IDLE`] between polls.
    polling_since: AtomicU64,
}

const IDLE: u64 = u64::MAX;

impl Default for CpuMeter {
    fn default() -> Self {
        CpuMeter {
            origin: Instant::now(),
            busy: AtomicU64::new(0),
            polling_since: AtomicU64::new(IDLE),
        }
    }
}

impl CpuMeter {
    /// A meter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// CPU time used so far, the poll going on included.
    pub fn used(&self) -> Duration {
        let mut nanos = self.busy.load(Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Relaxed);
        if since != IDLE {
            nanos = nanos.saturating_add(self.now().saturating_sub(since));
        }
        Duration::from_nanos(nanos)
    }

    fn begin(&self) {
        self.polling_since.store(self.now(), Ordering::Relaxed);
    }

    fn end(&self) {
        let since = self.polling_since.swap(IDLE, Ordering::Relaxed);
        if since != IDLE {
            let spent = self.now().saturating_sub(since);
            self.busy.fetch_add(spent, Ordering::Relaxed);
        }
    }
}

/// A future whose polls are timed into a [`CpuMeter`].
pub struct Metered<'m, F> {
    inner: Pin<Box<F>>,
    meter: &'m CpuMeter,
}

impl<'m, F: Future> Metered<'m, F> {
    /// Time every poll of `inner` into `meter`.
    pub fn new(inner: F, meter: &'m CpuMeter) -> Self {
        Metered {
            inner: Box::pin(inner),
            meter,
        }
    }
}

impl<F: Future> Future for Metered<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let meter = self.meter;
        meter.begin();
        let polled = self.inner.as_mut().poll(cx);
        meter.end();
        polled
    }
}

/// Caps linear memory growth and remembers whether the cap was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// The size a refused growth asked for, if any.
    pub refused: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter allowing at most `max_bytes` of linear memory per memory.
    pub fn new(max_bytes: u64) -> Self {
        MemoryLimiter {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            refused: None,
        }
    }

    /// The cap, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            // Trap right away: a refused grow would otherwise surface as a
            // guest abort ("memory allocation failed") that names nothing.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded: tried to grow to {desired} bytes",
                self.max_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Most assertions one run may return.
pub const MAX_ASSERTIONS: usize = 1_000;
/// Most measurements one run may return.
pub const MAX_MEASUREMENTS: usize = 1_000;
/// Most labels one run may return.
pub const MAX_LABELS: usize = 64;
/// Longest name: an assertion's or a measurement's name, a unit, a label's key
/// or value (they become metric series and labels).
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest text: the summary or one assertion's detail.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most bytes of text one result may carry in all.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Why a check's verdict is too large to keep, naming the cap it broke, or
/// `None` if it fits. A result is a report, not a data channel: millions of
/// assertions or megabytes of labels would flood every sink (metric series,
/// history rows, alert payloads), so such a run ends with an error instead.
pub fn oversized_result(
    summary: &str,
    assertions: impl ExactSizeIterator<Item = (usize, usize)>,
    measurements: impl ExactSizeIterator<Item = (usize, usize)>,
    labels: impl ExactSizeIterator<Item = (usize, usize)>,
) -> Option<String> {
    let counts = [
        ("assertions", assertions.len(), MAX_ASSERTIONS),
        ("measurements", measurements.len(), MAX_MEASUREMENTS),
        ("labels", labels.len(), MAX_LABELS),
    ];
    for (what, n, max) in counts {
        if n > max {
            return Some(format!(
                "result too large: {n} {what} (the limit is {max} per run)"
            ));
        }
    }
    let mut total = summary.len();
    if summary.len() > MAX_TEXT_BYTES {
        return Some(format!(
            "result too large: a summary of {} bytes (the limit is {MAX_TEXT_BYTES} bytes)",
            summary.len()
        ));
    }
    let items = [
        (
            "an assertion name",
            "an assertion detail",
            assertions.collect::<Vec<_>>(),
            MAX_TEXT_BYTES,
        ),
        (
            "a measurement name",
            "a measurement unit",
            measurements.collect(),
            MAX_NAME_BYTES,
        ),
        (
            "a label key",
            "a label value",
            labels.collect(),
            MAX_NAME_BYTES,
        ),
    ];
    for (first, second, sizes, second_max) in items {
        for (a, b) in sizes {
            if a > MAX_NAME_BYTES {
                return Some(format!(
                    "result too large: {first} of {a} bytes (the limit is {MAX_NAME_BYTES} bytes)"
                ));
            }
            if b > second_max {
                return Some(format!(
                    "result too large: {second} of {b} bytes (the limit is {second_max} bytes)"
                ));
            }
            total += a + b;
        }
    }
    (total > MAX_RESULT_BYTES).then(|| {
        format!("result too large: {total} bytes of text (the limit is {MAX_RESULT_BYTES} bytes per run)")
    })
}

/// Most labels one measurement may carry.
pub const MAX_MEASUREMENT_LABELS: usize = 8;

/// Label names the host sets on every measurement series; a check may not
/// replace them.
pub const RESERVED_LABELS: [&str; 7] = [
    "check",
    "location",
    "measurement",
    "unit",
    "job",
    "instance",
    "le",
];

/// Why measurement labels cannot be exported, if they cannot: more than
/// [`MAX_MEASUREMENT_LABELS`] on one measurement, a name that is not
/// `[a-z_][a-z0-9_]*` or starts with `__`, a reserved name, a name given
/// twice, a name or value over [`MAX_NAME_BYTES`].
pub fn bad_measurement_labels<'a>(
    measurements: impl Iterator<Item = (&'a str, &'a [(String, String)])>,
) -> Option<String> {
    for (name, labels) in measurements {
        if labels.len() > MAX_MEASUREMENT_LABELS {
            return Some(format!(
                "measurement {name:?} has {} labels (the limit is {MAX_MEASUREMENT_LABELS})",
                labels.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (key, value) in labels {
            let shape = key.len() <= MAX_NAME_BYTES
                && key
                    .bytes()
                    .next()
                    .is_some_and(|b| b == b'_' || b.is_ascii_lowercase())
                && key
                    .bytes()
                    .all(|b| b == b'_' || b.is_ascii_lowercase() || b.is_ascii_digit())
                && !key.starts_with("__");
            if !shape {
                return Some(format!(
                    "measurement {name:?}: label name {:?} is not [a-z_][a-z0-9_]*",
                    key.chars().take(64).collect::<String>()
                ));
            }
            if RESERVED_LABELS.contains(&key.as_str()) {
                return Some(format!(
                    "measurement {name:?}: label {key:?} is set by the host"
                ));
            }
            if !seen.insert(key.as_str()) {
                return Some(format!("measurement {name:?}: label {key:?} given twice"));
            }
            if value.len() > MAX_NAME_BYTES {
                return Some(format!(
                    "result too large: label {key:?} of measurement {name:?} has a value of {} bytes (the limit is {MAX_NAME_BYTES} bytes)",
                    value.len()
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_labels_are_names_not_reserved_and_unique() {
        let ok = vec![("target".to_string(), "https://a".to_string())];
        assert_eq!(
            bad_measurement_labels([("latency", ok.as_slice())].into_iter()),
            None
        );
        for (labels, why) in [
            (vec![("Target".into(), "x".into())], "is not"),
            (vec![("__name__".into(), "x".into())], "is not"),
            (vec![("check".into(), "x".into())], "set by the host"),
            (
                vec![("a".into(), "x".into()), ("a".into(), "y".into())],
                "given twice",
            ),
            (
                (0..9).map(|i| (format!("l{i}"), String::new())).collect(),
                "9 labels",
            ),
        ] {
            let labels: Vec<(String, String)> = labels;
            let e =
                bad_measurement_labels([("m", labels.as_slice())].into_iter()).expect("refused");
            assert!(e.contains(why), "{e}");
        }
    }

    #[tokio::test]
    async fn the_meter_counts_time_in_poll_not_time_waiting() {
        let meter = CpuMeter::new();
        let run = async {
            // 30 ms computing, then 100 ms waiting, then 30 ms computing.
            let spin = |ms| {
                let end = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < end {}
            };
            spin(30);
            tokio::time::sleep(Duration::from_millis(100)).await;
            spin(30);
        };
        Metered::new(run, &meter).await;
        let used = meter.used();
        assert!(
            used >= Duration::from_millis(60) && used < Duration::from_millis(100),
            "{used:?}"
        );
    }

    #[test]
    fn the_poll_going_on_counts() {
        let meter = CpuMeter::new();
        meter.begin();
        std::thread::sleep(Duration::from_millis(20));
        assert!(meter.used() >= Duration::from_millis(20));
        meter.end();
        let after = meter.used();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(meter.used(), after, "idle time counted");
    }

    fn sizes(n: usize, a: usize, b: usize) -> std::vec::IntoIter<(usize, usize)> {
        vec![(a, b); n].into_iter()
    }

    #[test]
    fn results_within_the_caps_fit() {
        assert_eq!(
            oversized_result("ok", sizes(10, 20, 200), sizes(5, 10, 2), sizes(3, 8, 8)),
            None
        );
    }

    #[test]
    fn every_cap_is_named() {
        let none = || sizes(0, 0, 0);
        let cases = [
            (
                oversized_result("", sizes(1001, 1, 1), none(), none()),
                "1001 assertions (the limit is 1000 per run)",
            ),
            (
                oversized_result("", none(), sizes(1001, 1, 1), none()),
                "1001 measurements",
            ),
            (
                oversized_result("", none(), none(), sizes(65, 1, 1)),
                "65 labels",
            ),
            (
                oversized_result(&"s".repeat(70_000), none(), none(), none()),
                "a summary of 70000 bytes",
            ),
            (
                oversized_result("", sizes(1, 2000, 1), none(), none()),
                "an assertion name of 2000 bytes",
            ),
            (
                oversized_result("", sizes(1, 1, 70_000), none(), none()),
                "an assertion detail of 70000 bytes",
            ),
            (
                oversized_result("", none(), sizes(1, 1, 2000), none()),
                "a measurement unit of 2000 bytes",
            ),
            (
                oversized_result("", none(), none(), sizes(1, 1, 5000)),
                "a label value of 5000 bytes",
            ),
            (
                oversized_result("", sizes(20, 1, 60_000), none(), none()),
                "bytes of text (the limit is 1048576 bytes per run)",
            ),
        ];
        for (got, want) in cases {
            let got = got.expect(want);
            assert!(
                got.starts_with("result too large: ") && got.contains(want),
                "{got} / {want}"
            );
        }
    }
}
