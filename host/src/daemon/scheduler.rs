//! The scheduler: one task per check that sleeps until the check's next
//! planned start, waits for a slot under the global concurrency cap, runs
//! the check (retrying a bad run if configured), and hands the
//! [`RunRecord`] to the sinks.
//!
//! Runs of one check never overlap: a check's task runs one run at a time,
//! and planned starts that pass while a run is still going are skipped and
//! counted. Start lateness (actual start − planned start, after waiting for
//! a concurrency slot) is measured for every run.
//!
//! Each check task keeps its guest [`Lane`]: a check whose runs compute
//! flat out runs in the guest pool's low-priority lane (see
//! [`GuestPool`]). A run that starts in the low lane first waits for a
//! slot of that lane's small budget of runs in flight, then for its slot
//! under the concurrency cap, so heavy checks hold at most that budget of
//! the cap; a run moved to the low lane mid-run keeps the slot it has (it
//! is in flight: pausing it would hold its instance and memory outside the
//! cap). The cap stays the most runs in flight.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::capabilities::net::HostResolver;
use crate::config::{CheckSpec, Maintenance, Schedule};
use crate::pace::{self, Clock};
use crate::result::{CheckResult, ErrorKind};
use crate::runtime::limits::CpuMeter;
use crate::runtime::pool::{GuestPool, Lane};
use crate::runtime::{LoadedCheck, RunSpec, Runtime};
use crate::sinks::Sinks;

use super::plan;
use super::state::{Tracker, is_good};
use crate::result::{Attempt, RanComponent, RunRecord};
use crate::sinks::board::CheckView;

/// What every check task shares.
pub struct Shared {
    /// The sandbox.
    pub runtime: Arc<Runtime>,
    /// The threads guest code runs on (see [`GuestPool`] for why).
    pub guests: GuestPool,
    /// The global concurrency cap.
    pub permits: Arc<Semaphore>,
    /// Where records go.
    pub sinks: Sinks,
    /// This daemon's location label.
    pub location: String,
    /// Maintenance windows of the running configuration (replaced on reload).
    pub maintenance: RwLock<Arc<Vec<Maintenance>>>,
    /// Where the scheduler reads the time (the system clock in the daemon;
    /// tokio's, possibly paused, in tests).
    pub clock: Clock,
    /// The restore runs (`test/run id`) this process has in flight, cleanup
    /// included: a restore task never adopts one of them
    /// ([`crate::restore::adopt`]), as a task replaced on reload would.
    pub restore_runs: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl Shared {
    /// The maintenance window covering `check` now, if any.
    pub fn maintenance_for(&self, check: &str) -> Option<String> {
        let now = chrono::DateTime::<chrono::Utc>::from(self.clock.now());
        let windows = self
            .maintenance
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        windows
            .iter()
            .find(|m| m.covers(check, now))
            .map(|m| m.name.clone())
    }

    /// Run `check` once with `spec` on the guest pool, starting in the
    /// normal lane (it moves to the low lane if it computes flat out, still
    /// holding the caller's concurrency slot). A panic of the host while
    /// serving the run becomes an error result.
    pub async fn run_guest(&self, check: &Arc<LoadedCheck>, spec: &Arc<RunSpec>) -> CheckResult {
        self.run_guest_in_lane(check, spec, &Lane::default()).await
    }

    /// [`run_guest`](Self::run_guest) in the lane `lane` says, which then
    /// learns what the run used (the caller holds the run's slot under the cap).
    pub async fn run_guest_in_lane(
        &self,
        check: &Arc<LoadedCheck>,
        spec: &Arc<RunSpec>,
        lane: &Lane,
    ) -> CheckResult {
        let started = plan::unix_ms(self.clock.now());
        let meter = Arc::new(CpuMeter::new());
        let run = {
            let (runtime, check, spec) = (self.runtime.clone(), check.clone(), spec.clone());
            let meter = meter.clone();
            async move { runtime.run_metered(&check, &spec, meter).await }
        };
        self.sinks.metrics.in_flight(1);
        let (result, _) = self.guests.run_in_lane(lane, meter, run).await;
        self.sinks.metrics.in_flight(-1);
        result.unwrap_or_else(|why| {
            CheckResult::host_error(
                &spec.check_name,
                &spec.location,
                started,
                ErrorKind::Host,
                why,
            )
        })
    }
}

/// What a run of a check executes.
pub enum Runnable {
    /// A loaded component, run in the sandbox on the guest pool: what the
    /// daemon runs.
    Guest(Arc<LoadedCheck>),
    /// Scripted runs that take a chosen (virtual) time and end with a chosen
    /// status, without a guest: the scheduler's tests on paused time.
    #[cfg(test)]
    Scripted(Arc<super::scheduler_tests::Script>),
}

impl Runnable {
    /// The loaded component, if this runs one.
    pub fn guest(&self) -> Option<&Arc<LoadedCheck>> {
        match self {
            Runnable::Guest(check) => Some(check),
            #[cfg(test)]
            Runnable::Scripted(_) => None,
        }
    }
}

/// A configured check, ready to schedule: its spec, the inputs of each run,
/// and what it runs (or why its component failed to load: every run then
/// reports that as an error).
pub struct Prepared {
    /// The check as configured.
    pub spec: CheckSpec,
    /// The inputs of each run.
    pub run_spec: Arc<RunSpec>,
    /// What each run executes, or the load error.
    pub component: Result<Runnable, String>,
    /// sha256 of the component bytes, when they could be read.
    pub digest: Option<String>,
}

impl Prepared {
    /// A check with its component (or load error), for this daemon's
    /// location and resolver.
    pub fn new(
        spec: CheckSpec,
        component: Result<Arc<LoadedCheck>, String>,
        digest: Option<String>,
        location: &str,
        resolver: Arc<HostResolver>,
    ) -> Self {
        let run_spec = Arc::new(RunSpec::for_check(&spec, location, resolver));
        Prepared {
            spec,
            run_spec,
            component: component.map(Runnable::Guest),
            digest,
        }
    }

    /// The loaded component, if the check has one.
    pub fn guest(&self) -> Option<&Arc<LoadedCheck>> {
        self.component.as_ref().ok().and_then(Runnable::guest)
    }
}

/// What a check or restore-test task runs, as its task handle sees it.
pub trait Job {
    /// Log that the task was still running after the grace period and was
    /// aborted (naming the check or restore test).
    fn log_aborted(&self);
}

impl Job for Prepared {
    fn log_aborted(&self) {
        warn!(check = %self.spec.name, "run still going after the grace period: aborted");
    }
}

/// A running check or restore-test task and how to stop it.
pub struct Running<P> {
    /// What it runs.
    pub prepared: Arc<P>,
    /// Its alerting state, handed on to the replacement when the check or
    /// restore test changes on reload.
    pub tracker: Arc<Mutex<Tracker>>,
    pub(super) task: TaskHandle,
}

/// A running check task.
pub type CheckTask = Running<Prepared>;

impl<P: Job> Running<P> {
    /// Ask the task to stop: it starts no new run; a run in flight finishes
    /// (with its cleanup).
    pub fn stop(&self) {
        self.task.stop();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Wait for the task to end, at most `grace`; then abort it.
    pub async fn join(self, grace: Duration) {
        if !self.task.join(grace).await {
            self.prepared.log_aborted();
        }
    }
}

impl<P: Job> super::state::Replaced for Running<P> {
    fn stop(&self) {
        Running::stop(self);
    }
    fn tracker(&self) -> &Arc<Mutex<Tracker>> {
        &self.tracker
    }
}

/// A spawned loop that can be asked to stop (it sees the request on its
/// `watch::Receiver`) and awaited with a grace period. Check tasks and
/// restore-test tasks both are one.
pub struct TaskHandle {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl TaskHandle {
    /// Spawn the future `make` builds from the stop receiver.
    pub fn spawn<F>(make: impl FnOnce(watch::Receiver<bool>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        TaskHandle {
            stop,
            handle: tokio::spawn(make(stopped)),
        }
    }

    /// Ask the task to stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Wait for the task to end, at most `grace`; then abort it. Returns
    /// false if it had to be aborted.
    pub async fn join(self, grace: Duration) -> bool {
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            abort.abort();
            return false;
        }
        true
    }
}

impl CheckTask {
    /// Start the task of one check.
    pub fn spawn(
        shared: Arc<Shared>,
        prepared: Arc<Prepared>,
        tracker: Arc<Mutex<Tracker>>,
    ) -> Self {
        let spec = &prepared.spec;
        let state = tracker.lock().unwrap_or_else(|e| e.into_inner()).state();
        shared.sinks.board.insert(CheckView {
            name: spec.name.clone(),
            kind: crate::sinks::board::Kind::Check,
            // What runs: a registry reference pinned to its digest
            // (`oci://…:tag@sha256:…`), else the file as configured.
            component: prepared
                .guest()
                .filter(|c| c.source.starts_with("oci://"))
                .map_or_else(|| spec.component.to_string(), |c| c.source.clone()),
            schedule: spec.schedule.to_string(),
            targets: spec.targets.clone(),
            location: shared.location.clone(),
            severity: spec.severity.clone(),
            state,
            ..Default::default()
        });
        let span = info_span!("check", check = %spec.name, location = %shared.location);
        let task = TaskHandle::spawn(|stopped| {
            check_loop(shared, prepared.clone(), tracker.clone(), stopped).instrument(span)
        });
        CheckTask {
            prepared,
            tracker,
            task,
        }
    }
}

/// Sleep until `planned` on `clock`, or return false if asked to stop first.
pub(super) async fn sleep_until(
    clock: &Clock,
    planned: SystemTime,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = clock.sleep_until(planned) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// The delay before retry number `attempt` (from 1) of a run planned at
/// `planned`: `retry_delay` doubled for each earlier retry, capped at the
/// check's interval (for a cron schedule, the gap to the next planned
/// start), and up to 20% lower at random so checks that failed together do
/// not retry in lockstep.
fn retry_delay(spec: &CheckSpec, planned: SystemTime, attempt: u32) -> Duration {
    let interval = match &spec.schedule {
        Schedule::Every(every) => *every,
        Schedule::Cron(..) => plan::next_after(&spec.schedule, spec.timezone, &spec.name, planned)
            .and_then(|next| next.duration_since(planned).ok())
            .unwrap_or(spec.retry_delay),
    };
    pace::backoff(
        attempt,
        spec.retry_delay,
        interval.max(spec.retry_delay),
        0.2,
    )
}

async fn check_loop(
    shared: Arc<Shared>,
    prepared: Arc<Prepared>,
    tracker: Arc<Mutex<Tracker>>,
    mut stop: watch::Receiver<bool>,
) {
    let spec = &prepared.spec;
    let name = spec.name.as_str();
    let board = &shared.sinks.board;
    let lane = Lane::default();
    let clock = shared.clock;
    let mut after = clock.now();
    loop {
        let Some(slot) = plan::next_after(&spec.schedule, spec.timezone, name, after) else {
            info!(schedule = %spec.schedule, "the schedule has no future start: the check will not run again");
            return;
        };
        let planned = slot + pace::up_to(spec.jitter);
        board.update(name, |v| v.next_unix_ms = Some(plan::unix_ms(planned)));
        if !sleep_until(&clock, planned, &mut stop).await {
            return;
        }
        // `None`: stopped while waiting for a concurrency slot; nothing ran.
        let Some(record) =
            run_scheduled(&shared, &prepared, &tracker, &lane, planned, &mut stop).await
        else {
            return;
        };
        let finished = clock.now();
        let missed = plan::missed_between(&spec.schedule, spec.timezone, name, planned, finished);
        if missed > 0 {
            warn!(
                missed,
                "the run took longer than the interval: planned runs were skipped"
            );
        }
        publish(&shared, name, Arc::new(record), |v| {
            v.skipped_overlap += missed;
            for _ in 0..missed {
                shared.sinks.metrics.skipped_overlap(name);
            }
        });
        after = finished.max(planned);
    }
}

/// Publish a finished run of `name` (a check or a restore test): update its
/// board entry (`also` adds what is particular to the caller) and hand the
/// record to every sink.
///
/// Published under the board's lock and only while the entry is on the
/// board: one removed by a reload while this run was in flight has left the
/// board before the live sinks forgot it (see `Sinks::forget`), so its late
/// run goes to the history only and brings back no metric series and no
/// alert.
pub(super) fn publish(
    shared: &Shared,
    name: &str,
    record: Arc<RunRecord>,
    also: impl FnOnce(&mut CheckView),
) {
    let mut live = false;
    shared.sinks.board.update(name, |v| {
        live = true;
        v.state = record.state;
        v.runs += 1;
        v.maintenance = record.maintenance.clone();
        if !is_good(record.result.status) {
            v.last_failure = Some(record.clone());
        }
        v.last = Some(record.clone());
        also(v);
        shared.sinks.publish(record.clone());
    });
    if !live {
        shared.sinks.history.record(record);
    }
}

/// One scheduled run with its retries; `None` if asked to stop before the
/// first attempt started. A run that started always finishes; a stop
/// request cancels only the retries not yet started.
async fn run_scheduled(
    shared: &Shared,
    prepared: &Prepared,
    tracker: &Mutex<Tracker>,
    lane: &Lane,
    planned: SystemTime,
    stop: &mut watch::Receiver<bool>,
) -> Option<RunRecord> {
    let spec = &prepared.spec;
    let mut retries = Vec::new();
    let (mut result, lateness) = attempt(shared, prepared, lane, Some(planned), stop).await?;
    while !is_good(result.status) && (retries.len() as u32) < spec.retries {
        let attempt_no = retries.len() as u32 + 1;
        let delay = retry_delay(spec, planned, attempt_no);
        info!(
            status = result.status.as_str(),
            attempt = attempt_no,
            "bad run: retrying in {}",
            humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        );
        retries.push(Attempt {
            status: result.status,
            summary: result.summary.clone(),
            duration_ms: result.duration_ms,
        });
        if !sleep_until(&shared.clock, shared.clock.now() + delay, stop).await {
            // Stopping: the last attempt counts, with the retries so far.
            retries.pop();
            break;
        }
        match attempt(shared, prepared, lane, None, stop).await {
            Some((r, _)) => result = r,
            None => {
                retries.pop();
                break;
            }
        }
    }
    let (state, transition) = tracker.lock().unwrap_or_else(|e| e.into_inner()).observe(
        result.status,
        spec.failure_threshold,
        spec.success_threshold,
    );
    let maintenance = shared.maintenance_for(&spec.name);
    let record = RunRecord {
        planned_unix_ms: plan::unix_ms(planned),
        lateness_ms: lateness.as_secs_f64() * 1000.0,
        retries,
        state,
        transition,
        maintenance,
        severity: spec.severity.clone(),
        result,
        component: prepared
            .component
            .as_ref()
            .ok()
            .and_then(Runnable::guest)
            .map(|c| RanComponent {
                source: c.source.clone(),
                sha256: c.digest.clone(),
            }),
    };
    log_run(&record);
    Some(record)
}

fn log_run(record: &RunRecord) {
    let r = &record.result;
    let fields = (r.status.as_str(), r.duration_ms, record.lateness_ms);
    if let Some(t) = record.transition {
        let reason = if is_good(r.status) {
            r.summary.clone()
        } else {
            record.reason()
        };
        if t.to == crate::result::CheckState::Down {
            warn!(
                run_id = %r.run_id,
                status = fields.0,
                from = t.from.as_str(),
                to = t.to.as_str(),
                maintenance = record.maintenance.as_deref(),
                "check is down: {reason}"
            );
        } else {
            info!(
                run_id = %r.run_id,
                status = fields.0,
                from = t.from.as_str(),
                to = t.to.as_str(),
                "check is {}: {reason}",
                t.to.as_str()
            );
        }
    } else if is_good(r.status) {
        debug!(run_id = %r.run_id, status = fields.0, duration_ms = fields.1, lateness_ms = fields.2, "run finished");
    } else {
        info!(run_id = %r.run_id, status = fields.0, duration_ms = fields.1, "bad run: {}", record.reason());
    }
}

/// A run's place under the concurrency cap and, in the low lane, in that
/// lane's budget; both are given back when it drops.
struct Slot {
    _cap: OwnedSemaphorePermit,
    _low: Option<OwnedSemaphorePermit>,
}

impl Slot {
    /// Wait for a slot of `low`'s budget (when given), then for one under
    /// the cap `cap`. `None` if a semaphore was closed.
    async fn acquire(cap: &Arc<Semaphore>, low: Option<&Arc<Semaphore>>) -> Option<Slot> {
        let low = match low {
            Some(low) => Some(low.clone().acquire_owned().await.ok()?),
            None => None,
        };
        let cap = cap.clone().acquire_owned().await.ok()?;
        Some(Slot {
            _cap: cap,
            _low: low,
        })
    }
}

/// Wait for a concurrency slot (and first a slot of the low lane's budget if
/// the check's runs start there) and run once. Returns the result and, when
/// `planned` is given, the start lateness; `None` if asked to stop while
/// waiting for the slot.
async fn attempt(
    shared: &Shared,
    prepared: &Prepared,
    lane: &Lane,
    planned: Option<SystemTime>,
    stop: &mut watch::Receiver<bool>,
) -> Option<(CheckResult, Duration)> {
    if *stop.borrow() {
        return None;
    }
    let low = lane.is_low().then(|| shared.guests.low_lane_permits());
    let _slot = tokio::select! {
        slot = Slot::acquire(&shared.permits, low) => slot?,
        _ = stop.wait_for(|s| *s) => return None,
    };
    let started = shared.clock.now();
    let lateness = planned
        .and_then(|p| started.duration_since(p).ok())
        .unwrap_or_default();
    if planned.is_some() {
        shared.sinks.metrics.lateness(lateness.as_secs_f64());
    }
    let spec = &prepared.spec;
    let result = match &prepared.component {
        Ok(Runnable::Guest(check)) => {
            shared
                .run_guest_in_lane(check, &prepared.run_spec, lane)
                .await
        }
        #[cfg(test)]
        Ok(Runnable::Scripted(script)) => script.run(&spec.name, &shared.clock).await,
        Err(why) => CheckResult::host_error(
            &spec.name,
            &shared.location,
            plan::unix_ms(started),
            ErrorKind::Load,
            why.clone(),
        ),
    };
    Some((result, lateness))
}
