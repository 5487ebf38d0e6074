//! The threads guest code runs on, apart from the daemon's own, in two
//! lanes: a normal one, and a low-priority one for checks that compute flat
//! out.
//!
//! Why a second Tokio runtime: a guest holds the worker thread that polls it
//! until its next epoch tick ([`EPOCH_TICK`](super::engine::EPOCH_TICK),
//! 10 ms), and a Tokio worker looks at its timers only between task polls
//! (and only every few dozen polls while it has work queued). With checks
//! that compute flat out (a looping or hostile guest, a compile of a new
//! component), timers of the scheduler and requests to the API sharing
//! those workers wait behind them: in `tests/e2e/hostile_daemon.rs` the
//! start lateness p99 of well-behaved checks went from 7 ms alone to
//! 107–170 ms beside eight hostile ones. On its own runtime guest code
//! competes with the scheduler only for CPU, which the kernel shares
//! preemptively, in well under a millisecond.
//!
//! Why two lanes: within one runtime, runs take turns on its threads in
//! epoch-tick slices. Eight checks that loop until their deadline then
//! hold both threads of a 2-core machine nearly all the time, and every
//! other run waits behind eight 10 ms slices at each turn: with 2,000
//! checks every 10 s, runs took so long that the 64 runs in flight filled
//! the concurrency cap and mean start lateness went from 1.1 ms to 2.05 s
//! (issue 12). So every run's CPU time is measured ([`CpuMeter`]); a run
//! that has computed for [`HEAVY_RUN`] is moved, at its next yield, to the
//! low lane: its own runtime with a quarter of the threads (at least one),
//! at a lower OS priority (nice [`LOW_LANE_NICE`] on Linux), so heavy runs
//! together get at most those threads, and the kernel prefers the normal
//! lane's threads when both want a core. The check's later runs start in
//! the low lane ([`Lane`]) until [`RECOVER_AFTER`] runs in a row stay under
//! [`HEAVY_RUN`]. The daemon's scheduler also holds low-lane runs to a
//! small budget of runs in flight ([`GuestPool::low_lane_permits`]) within
//! the concurrency cap, so heavy checks cannot fill that cap.
//!
//! What runs here: compiling and describing components, and every run (the
//! guest and the host calls it makes: the connections and DNS lookups of a
//! run are driven by this runtime). Scheduling, sinks and the web server
//! stay on the caller's runtime.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::Semaphore;

use super::limits::CpuMeter;
use crate::pace::AbortOnDrop;

/// CPU time one run may use before it (and the check's next runs) move to
/// the low lane. Ten times what the heaviest official check uses per run
/// (an HTTPS probe with its handshake: under 5 ms even in a debug build),
/// and short enough that a looping check holds a normal-lane thread for no
/// more than five epoch ticks.
pub const HEAVY_RUN: Duration = Duration::from_millis(50);

/// Runs in a row under [`HEAVY_RUN`] that bring a check back from the low
/// lane to the normal one.
pub const RECOVER_AFTER: u32 = 3;

/// The nice value of the low lane's threads (Linux; elsewhere they run at
/// the process's priority). 10: the kernel gives a thread at nice 10 about
/// a tenth of the CPU of a thread at nice 0 when both want the same core,
/// so heavy checks still progress on a busy machine.
pub const LOW_LANE_NICE: i32 = 10;

/// Runs in flight the low lane allows when the pool is not told
/// ([`GuestPool::with_low_lane_permits`]): [`low_lane_permits_for`] the
/// default concurrency of 64.
pub const DEFAULT_LOW_LANE_PERMITS: usize = 8;

/// The low lane's budget of runs in flight beside a cap of `concurrency`
/// runs in the normal lane: an eighth of it (at least one).
pub fn low_lane_permits_for(concurrency: usize) -> usize {
    concurrency.div_ceil(8).max(1)
}

/// The guest threads: a normal lane and a low-priority lane, each a
/// multi-threaded Tokio runtime.
pub struct GuestPool {
    /// `Some` until dropped (then shut down without waiting).
    normal: Option<tokio::runtime::Runtime>,
    low: Option<tokio::runtime::Runtime>,
    normal_handle: Handle,
    low_handle: Handle,
    low_permits: Arc<Semaphore>,
}

/// Which lane a check's runs start in, from what its recent runs used.
/// One per check, kept across its runs.
#[derive(Debug, Default)]
pub struct Lane {
    /// 0: normal lane; otherwise low lane, and `1 + ` the light runs in a
    /// row since.
    state: AtomicU32,
}

/// A check moving between lanes after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneChange {
    /// The run used at least [`HEAVY_RUN`] of CPU: later runs start in the
    /// low lane.
    Demoted,
    /// [`RECOVER_AFTER`] light runs in a row: back to the normal lane.
    Restored,
}

impl Lane {
    /// Whether the check's next run starts in the low lane.
    pub fn is_low(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    /// Take a finished run's CPU time into account.
    pub fn observe(&self, used: Duration) -> Option<LaneChange> {
        let state = self.state.load(Ordering::Relaxed);
        let (next, change) = match (state, used >= HEAVY_RUN) {
            (0, false) => (0, None),
            (0, true) => (1, Some(LaneChange::Demoted)),
            (_, true) => (1, None),
            (n, false) if n >= RECOVER_AFTER => (0, Some(LaneChange::Restored)),
            (n, false) => (n + 1, None),
        };
        self.state.store(next, Ordering::Relaxed);
        change
    }
}

impl GuestPool {
    /// Start a pool of `threads` normal-lane worker threads (at least one),
    /// named `vantage-guest`, and a quarter as many (at least one) low-lane
    /// threads, named `vantage-guest-low`.
    pub fn new(threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let normal = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("vantage-guest")
            .enable_all()
            .build()?;
        let low = Builder::new_multi_thread()
            .worker_threads((threads / 4).max(1))
            .thread_name("vantage-guest-low")
            .on_thread_start(lower_this_threads_priority)
            .enable_all()
            .build()?;
        Ok(GuestPool {
            normal_handle: normal.handle().clone(),
            low_handle: low.handle().clone(),
            normal: Some(normal),
            low: Some(low),
            low_permits: Arc::new(Semaphore::new(DEFAULT_LOW_LANE_PERMITS)),
        })
    }

    /// A pool with one normal-lane thread per available core.
    pub fn per_core() -> io::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Allow `permits` runs (at least one) in flight in the low lane.
    pub fn with_low_lane_permits(mut self, permits: usize) -> Self {
        self.low_permits = Arc::new(Semaphore::new(permits.max(1)));
        self
    }

    /// The runs in flight the low lane allows: the scheduler takes one of
    /// these, besides a slot under the concurrency cap, for a run in the
    /// low lane.
    pub fn low_lane_permits(&self) -> &Arc<Semaphore> {
        &self.low_permits
    }

    /// Run `future` on the normal lane and wait for its output, from any
    /// runtime. If the caller stops waiting (its task is aborted or
    /// dropped), the future is aborted too. `Err` carries the panic message
    /// if the future panicked.
    pub async fn run<F>(&self, future: F) -> Result<F::Output, String>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        wait(&self.normal_handle, future).await
    }

    /// Run one run of a check, `future`, whose CPU time goes into `meter`,
    /// in the lane `lane` says; a run that starts in the normal lane moves
    /// to the low lane once it has used [`HEAVY_RUN`] (keeping whatever
    /// concurrency slot its caller holds). Afterwards
    /// `lane` learns what the run used; a change of lane is returned (and
    /// logged). Waiting and errors as in [`run`](Self::run).
    pub async fn run_in_lane<F>(
        &self,
        lane: &Lane,
        meter: Arc<CpuMeter>,
        future: F,
    ) -> (Result<F::Output, String>, Option<LaneChange>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let output = if lane.is_low() {
            wait(&self.low_handle, future).await
        } else {
            let watched = UntilHeavy {
                inner: Some(Box::pin(future)),
                meter: meter.clone(),
            };
            match wait(&self.normal_handle, watched).await {
                Ok(Step::Done(output)) => Ok(output),
                Ok(Step::Heavy(rest)) => wait(&self.low_handle, rest).await,
                Err(e) => Err(e),
            }
        };
        let change = lane.observe(meter.used());
        match change {
            Some(LaneChange::Demoted) => tracing::info!(
                cpu_ms = meter.used().as_millis() as u64,
                "the run computed for {} ms or more: the check's runs move to the low-priority lane",
                HEAVY_RUN.as_millis()
            ),
            Some(LaneChange::Restored) => tracing::info!(
                "{RECOVER_AFTER} light runs in a row: the check's runs are back in the normal lane"
            ),
            None => {}
        }
        (output, change)
    }
}

/// Spawn `future` on `handle` and wait for it, aborting it if the wait is
/// dropped.
async fn wait<F>(handle: &Handle, future: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut task = AbortOnDrop(handle.spawn(future));
    match (&mut task.0).await {
        Ok(output) => Ok(output),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(format!(
                "the host panicked while running the check: {message}"
            ))
        }
        Err(_) => Err("the run was cancelled: the guest pool is shutting down".into()),
    }
}

/// How a run left the normal lane: finished, or heavy and still going.
enum Step<F: Future> {
    Done(F::Output),
    Heavy(Pin<Box<F>>),
}

/// Polls a run in the normal lane until it finishes or has used
/// [`HEAVY_RUN`] of CPU; then hands the unfinished run back, to be polled on
/// in the low lane. (Its timers and sockets stay registered with the normal
/// lane's drivers, which wake it wherever it is polled.)
struct UntilHeavy<F> {
    inner: Option<Pin<Box<F>>>,
    meter: Arc<CpuMeter>,
}

impl<F: Future> Future for UntilHeavy<F> {
    type Output = Step<F>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step<F>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Pending; // already handed back: never polled again
        };
        match inner.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Step::Done(output)),
            Poll::Pending if self.meter.used() >= HEAVY_RUN => match self.inner.take() {
                Some(rest) => Poll::Ready(Step::Heavy(rest)),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Lower the calling thread's scheduling priority to [`LOW_LANE_NICE`]
/// (Linux: the nice value is per thread). Best effort: on failure, or on
/// other systems, the thread keeps the process's priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` and `setpriority` take plain integers and touch
        // no memory of ours.
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, LOW_LANE_NICE)
        };
        if result != 0 {
            tracing::debug!(
                error = %io::Error::last_os_error(),
                "cannot lower the priority of a low-lane guest thread"
            );
        }
    }
}

impl Drop for GuestPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which is not allowed
        // inside another runtime; runs still going are abandoned instead.
        for runtime in [self.normal.take(), self.low.take()].into_iter().flatten() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn busy_guests_do_not_delay_the_callers_timers() {
        let pool = std::sync::Arc::new(GuestPool::new(1).unwrap());
        // Two tasks that hold their worker in 10 ms slices, as a looping
        // guest does between epoch ticks.
        let mut busy = Vec::new();
        for _ in 0..2 {
            let pool = pool.clone();
            busy.push(tokio::spawn(async move {
                pool.run(async {
                    let end = Instant::now() + Duration::from_millis(600);
                    while Instant::now() < end {
                        let slice = Instant::now() + Duration::from_millis(10);
                        while Instant::now() < slice {}
                        yield_as_wasmtime_does().await;
                    }
                })
                .await
            }));
        }
        // Measured in a task of the caller's runtime, as the scheduler is.
        let worst = tokio::spawn(async {
            let mut worst = Duration::ZERO;
            for _ in 0..20 {
                let asked = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                worst = worst.max(asked.elapsed() - Duration::from_millis(5));
            }
            worst
        })
        .await
        .unwrap();
        for b in busy {
            b.await.unwrap().unwrap();
        }
        assert!(
            worst < Duration::from_millis(200),
            "a 5 ms timer on the caller's runtime fired {worst:?} late"
        );
    }

    /// Wake at once and return `Pending` once, as wasmtime's epoch yield
    /// does (unlike `tokio::task::yield_now`, which defers the wake-up until
    /// the worker has looked at its timers).
    async fn yield_as_wasmtime_does() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }

    /// A guest that computes flat out for `total`, yielding every 10 ms as
    /// wasmtime's epoch yield does, timed into `meter` as `Runtime::run`
    /// times a run; returns the names of the threads it ran on.
    async fn looper(total: Duration, meter: Arc<CpuMeter>) -> Vec<String> {
        let mut threads: Vec<String> = Vec::new();
        let run = async {
            // At least `total`, and on a loaded machine until the run was
            // moved to the low lane (it needs its 50 ms of CPU first), at
            // most 20 s.
            let (end, cap) = (
                Instant::now() + total,
                Instant::now() + Duration::from_secs(20),
            );
            let moved = |t: &Vec<String>| t.last().is_some_and(|n| n == "vantage-guest-low");
            while (Instant::now() < end || !moved(&threads)) && Instant::now() < cap {
                let name = std::thread::current().name().unwrap_or("?").to_string();
                if threads.last() != Some(&name) {
                    threads.push(name);
                }
                let slice = Instant::now() + Duration::from_millis(10);
                while Instant::now() < slice {}
                yield_as_wasmtime_does().await;
            }
        };
        crate::runtime::limits::Metered::new(run, &meter).await;
        threads
    }

    #[tokio::test]
    async fn a_looping_run_moves_to_the_low_lane_and_its_next_runs_start_there() {
        let pool = GuestPool::new(1).unwrap();
        let lane = Lane::default();
        let meter = Arc::new(CpuMeter::new());
        let (threads, change) = pool
            .run_in_lane(
                &lane,
                meter.clone(),
                looper(Duration::from_millis(300), meter),
            )
            .await;
        // Moved mid-run, once it had computed for HEAVY_RUN.
        assert_eq!(threads.unwrap(), ["vantage-guest", "vantage-guest-low"]);
        assert_eq!(change, Some(LaneChange::Demoted));
        assert!(lane.is_low());
        let meter = Arc::new(CpuMeter::new());
        let (threads, change) = pool
            .run_in_lane(
                &lane,
                meter.clone(),
                looper(Duration::from_millis(100), meter),
            )
            .await;
        assert_eq!(threads.unwrap(), ["vantage-guest-low"]);
        assert_eq!(change, None);
    }

    #[test]
    fn a_check_returns_to_the_normal_lane_after_light_runs_in_a_row() {
        let lane = Lane::default();
        let (light, heavy) = (Duration::from_millis(1), HEAVY_RUN);
        assert_eq!(lane.observe(light), None);
        assert!(!lane.is_low());
        assert_eq!(lane.observe(heavy), Some(LaneChange::Demoted));
        for _ in 1..RECOVER_AFTER {
            assert_eq!(lane.observe(light), None);
            assert!(lane.is_low());
        }
        // A heavy run on the way back starts the count again.
        assert_eq!(lane.observe(heavy), None);
        for _ in 1..RECOVER_AFTER {
            assert_eq!(lane.observe(light), None);
        }
        assert_eq!(lane.observe(light), Some(LaneChange::Restored));
        assert!(!lane.is_low());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loopers_do_not_delay_light_runs() {
        // Eight checks that loop for 1.5 s each, beside light runs, on a
        // pool with one normal-lane thread. In one lane, every light run
        // would wait behind up to eight 10 ms slices (80 ms).
        let pool = Arc::new(GuestPool::new(1).unwrap());
        let mut loopers = Vec::new();
        for _ in 0..8 {
            let pool = pool.clone();
            loopers.push(tokio::spawn(async move {
                let (lane, meter) = (Lane::default(), Arc::new(CpuMeter::new()));
                let run = looper(Duration::from_millis(1500), meter.clone());
                pool.run_in_lane(&lane, meter, run).await.0.unwrap()
            }));
        }
        // Let them all be moved (each needs 50 ms of CPU), then measure.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut waits = Vec::new();
        for _ in 0..40 {
            let asked = Instant::now();
            let lane = Lane::default();
            let meter = Arc::new(CpuMeter::new());
            let (started, _) = pool
                .run_in_lane(&lane, meter, async move { asked.elapsed() })
                .await;
            waits.push(started.unwrap());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        for l in loopers {
            let threads = l.await.unwrap();
            assert_eq!(threads.last().unwrap(), "vantage-guest-low");
        }
        waits.sort();
        let p90 = waits[waits.len() * 9 / 10];
        assert!(
            p90 < Duration::from_millis(40),
            "light runs waited {p90:?} (p90) for a normal-lane thread: {waits:?}"
        );
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error_and_the_pool_goes_on() {
        let pool = GuestPool::new(1).unwrap();
        let err = pool.run(async { panic!("boom") }).await.unwrap_err();
        assert!(err.contains("boom"), "{err}");
        assert_eq!(pool.run(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn dropping_the_wait_aborts_the_future() {
        let pool = GuestPool::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = pool.run(async move {
            let _tx = tx; // dropped (closing the channel) when aborted
            std::future::pending::<()>().await
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        assert!(
            tokio::time::timeout(Duration::from_secs(2), rx)
                .await
                .is_ok(),
            "the future is still running after its caller gave up"
        );
    }
}
