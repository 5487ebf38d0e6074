//! The threads guest code runs on, apart from the daemon's own.
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
//! What runs here: compiling and describing components, and every run (the
//! guest and the host calls it makes: the connections and DNS lookups of a
//! run are driven by this runtime). Scheduling, sinks and the web server
//! stay on the caller's runtime.

use std::future::Future;
use std::io;

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;

/// A dedicated multi-threaded Tokio runtime for guest code.
pub struct GuestPool {
    /// `Some` until dropped (then shut down without waiting).
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
}

impl GuestPool {
    /// Start a pool of `threads` worker threads (at least one), named
    /// `vantage-guest`.
    pub fn new(threads: usize) -> io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("vantage-guest")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(GuestPool {
            runtime: Some(runtime),
            handle,
        })
    }

    /// A pool with one thread per available core.
    pub fn per_core() -> io::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Run `future` on the pool and wait for its output, from any runtime.
    /// If the caller stops waiting (its task is aborted or dropped), the
    /// future is aborted too. `Err` carries the panic message if the future
    /// panicked.
    pub async fn run<F>(&self, future: F) -> Result<F::Output, String>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut task = AbortOnDrop(self.handle.spawn(future));
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
}

impl Drop for GuestPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which is not allowed
        // inside another runtime; runs still going are abandoned instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts the task when dropped (a finished task ignores it).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
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
