//! The history sink: every [`RunRecord`] in a SQLite file,
//! `<data dir>/history.sqlite`, for the API, the status page and uptime.
//!
//! - Writes never block the scheduler: [`History::record`] queues the record
//!   on an unbounded channel, and **one** dedicated writer thread inserts
//!   whatever is queued in batches, one transaction per batch. The queue is
//!   capped at [`QUEUE_LIMIT`] records: beyond that (the disk has stalled for
//!   a long time) new records are dropped and counted
//!   ([`HistoryStats::dropped`]) rather than growing memory without bound.
//! - Runs per check are capped on insert: the transaction that inserts a
//!   check's run deletes its oldest runs beyond
//!   [`Retention::max_runs_per_check`], so the cap holds at every commit.
//!   Runs older than [`Retention::max_age`] are deleted when the writer
//!   starts, every [`PRUNE_EVERY_INSERTS`] inserts and at least every
//!   [`PRUNE_INTERVAL`].
//! - A stored run is at most about [`MAX_STORED_BYTES`] (its JSON) plus
//!   [`MAX_COLUMN_BYTES`] each for the `summary` and `reason` columns:
//!   larger results are cut with a [`TRUNCATED_MARKER`] (see
//!   [`stored_json`]). Results are redacted before they reach any sink, so
//!   cutting never shows more of a secret.
//! - Space is given back: the file uses `auto_vacuum = INCREMENTAL`, and
//!   the writer runs `incremental_vacuum` when more than [`SPARE_PAGES_MAX`]
//!   pages (and a quarter of the file) are free. A file created before this
//!   (without auto-vacuum) is converted by one `VACUUM` when opened.
//! - Reads use their own connections (WAL mode lets them run while the
//!   writer writes), on tokio's blocking pool.
//!
//! The database's schema version is `PRAGMA user_version`; [`History::open`]
//! applies the missing migrations in order and refuses a file written by a
//! newer Vantage.
//!
//! The `runs` table keeps the searchable fields in columns (the check name is
//! in `check_name`: `check` is an SQL keyword) and the whole record as JSON in
//! `record_json`, with its logs cut to an excerpt (see [`LOG_EXCERPT_LINES`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::result::Status;
use crate::result::{CheckState, RunRecord};

/// The file name inside the data dir.
pub const FILE_NAME: &str = "history.sqlite";

/// Records queued for the writer beyond which [`History::record`] drops new
/// records (and counts them) instead of queueing them.
pub const QUEUE_LIMIT: usize = 100_000;

/// "Queue full" lines: at most one a minute, with the count suppressed.
static DROP_LOG: crate::pace::LogLimiter = crate::pace::LogLimiter::new(Duration::from_secs(60));

/// The most records the writer inserts in one transaction.
const BATCH_MAX: usize = 512;

/// The writer prunes after this many inserts...
pub const PRUNE_EVERY_INSERTS: u64 = 1_000;

/// ...and at least this often.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// At most this many log lines are kept in a stored record (the last ones:
/// the end of a log usually says what went wrong)...
pub const LOG_EXCERPT_LINES: usize = 50;

/// ...and at most this many bytes of log messages.
pub const LOG_EXCERPT_BYTES: usize = 8 * 1024;

/// The most bytes of JSON stored for one run; a larger record is shrunk
/// (long texts cut, long lists shortened) until it fits, see
/// [`stored_json`].
pub const MAX_STORED_BYTES: usize = 64 * 1024;

/// The most bytes stored in the `summary` and `reason` columns of a run.
pub const MAX_COLUMN_BYTES: usize = 4 * 1024;

/// What a cut text ends with.
pub const TRUNCATED_MARKER: &str = "…[truncated]";

/// Free pages tolerated in the file before the writer gives them back
/// (`incremental_vacuum`): 1 MiB of 4 KiB pages, and only once they are
/// also a quarter of the file. Below that, SQLite reuses them for new runs.
pub const SPARE_PAGES_MAX: u64 = 256;

/// The most bytes the write-ahead log keeps on disk after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// Read connections kept open between queries.
const READ_POOL: usize = 4;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Points in [`Summary::latency`].
pub const LATENCY_POINTS: usize = 60;

/// Schema migrations: `MIGRATIONS[i]` takes the database from version `i` to
/// `i + 1`. Append only; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: the runs table.
    "CREATE TABLE runs (
        id              INTEGER PRIMARY KEY,
        check_name      TEXT    NOT NULL,
        location        TEXT    NOT NULL,
        run_id          TEXT    NOT NULL,
        started_unix_ms INTEGER NOT NULL,
        planned_unix_ms INTEGER NOT NULL,
        lateness_ms     REAL    NOT NULL,
        status          TEXT    NOT NULL,
        state           TEXT    NOT NULL,
        duration_ms     REAL    NOT NULL,
        summary         TEXT    NOT NULL,
        reason          TEXT    NOT NULL,
        attempts        INTEGER NOT NULL,
        maintenance     TEXT,
        record_json     TEXT    NOT NULL
    );
    -- Per-check reads by time; status and duration make it cover the uptime
    -- and latency queries (no table lookups for a week of runs).
    CREATE INDEX runs_check_started ON runs (check_name, started_unix_ms, status, duration_ms);
    -- Pruning by age.
    CREATE INDEX runs_started ON runs (started_unix_ms);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs that started longer ago than this are deleted (default 30 days).
    pub max_age: Duration,
    /// At most this many runs are kept per check, the newest (default 10 000).
    pub max_runs_per_check: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            max_runs_per_check: 10_000,
        }
    }
}

/// What the history says about one check, for the API and the status page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Fraction (0..=1) of the runs that started in the last 24 hours whose
    /// status is pass or degraded; `None` without such runs.
    pub uptime_24h: Option<f64>,
    /// The same over the last 7 days.
    pub uptime_7d: Option<f64>,
    /// Runs that started in the last 24 hours.
    pub runs_24h: u64,
    /// `(started unix ms, duration ms)` of the last [`LATENCY_POINTS`] runs,
    /// oldest first (for a sparkline).
    pub latency: Vec<(u64, f64)>,
    /// The stored JSON of the most recent bad run (fail or error), if any.
    pub last_failure: Option<Value>,
}

/// What the history says about a check when the daemon starts, so a
/// restart carries on from where the check was ([`History::resume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The state after the last stored run.
    pub state: CheckState,
    /// Good runs (pass, degraded) in a row at the end of the history.
    pub good_streak: u32,
    /// Bad runs (fail, error) in a row at the end of the history.
    pub bad_streak: u32,
    /// Runs stored for the check.
    pub runs: u64,
    /// When the check is down: the start (unix ms) of the first stored run
    /// of the current down episode, i.e. the run that went down (unless
    /// retention deleted it).
    pub down_since_unix_ms: Option<u64>,
    /// When the check is down: whether a run of the episode was outside a
    /// maintenance window, i.e. its alert was sent (else it was only
    /// suppressed).
    pub alert_sent: bool,
    /// Whether the last stored run was in a maintenance window.
    pub in_maintenance: bool,
}

/// Counters of the writer, since [`History::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryStats {
    /// Records inserted.
    pub written: u64,
    /// Records dropped because the queue was full ([`QUEUE_LIMIT`]).
    pub dropped: u64,
    /// Records lost because the database refused them (e.g. disk full).
    pub failed: u64,
    /// Records removed by retention.
    pub pruned: u64,
}

/// The history store. Cheap to clone: every clone shares the writer thread
/// and the read connections. When the last clone is dropped, the writer
/// finishes what is queued and the drop waits for it.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    pruned: AtomicU64,
}

enum Msg {
    Record(Arc<RunRecord>),
    Flush(oneshot::Sender<()>),
    Prune(oneshot::Sender<anyhow::Result<u64>>),
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain the queue and exit.
        drop(self.tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl History {
    /// Open (or create) `dir/history.sqlite`, creating `dir` if needed,
    /// migrate it to the current schema and start the writer thread.
    pub fn open(dir: &Path, retention: Retention) -> anyhow::Result<History> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the history directory {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let mut conn = open_connection(&path)
            .with_context(|| format!("opening the history database {}", path.display()))?;
        ensure_incremental_vacuum(&conn).with_context(|| {
            format!(
                "turning on incremental vacuum in the history database {}",
                path.display()
            )
        })?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT))
            .with_context(|| format!("setting up the history database {}", path.display()))?;
        migrate(&mut conn)
            .with_context(|| format!("migrating the history database {}", path.display()))?;
        let reader = open_reader(&path)
            .with_context(|| format!("opening the history database {}", path.display()))?;

        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn,
            rx,
            retention,
            counters: counters.clone(),
            since_prune: 0,
            last_prune: Instant::now(),
            counts: std::collections::HashMap::new(),
        };
        let writer = std::thread::Builder::new()
            .name("vantage-history".into())
            .spawn(move || writer.run())
            .context("starting the history writer thread")?;
        Ok(History {
            inner: Arc::new(Inner {
                path,
                tx: Some(tx),
                writer: Some(writer),
                readers: Mutex::new(vec![reader]),
                counters,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queue a run for writing. Never blocks: when [`QUEUE_LIMIT`] records
    /// are already waiting, the record is dropped and counted instead.
    pub fn record(&self, record: Arc<RunRecord>) {
        let c = &self.inner.counters;
        if c.queued.fetch_add(1, Ordering::AcqRel) >= QUEUE_LIMIT {
            c.queued.fetch_sub(1, Ordering::AcqRel);
            let dropped = c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(suppressed) = DROP_LOG.check("history queue full") {
                tracing::warn!(dropped, suppressed, "history queue full: dropping runs");
            }
            return;
        }
        if self.send(Msg::Record(record)).is_err() {
            c.queued.fetch_sub(1, Ordering::AcqRel);
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wait until everything queued before this call is written (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Apply the retention now (after writing what is queued); returns how
    /// many runs were deleted. The writer also does this on its own.
    pub async fn prune(&self) -> anyhow::Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Prune(tx))
            .map_err(|_| anyhow::anyhow!("the history writer has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the history writer has stopped"))?
    }

    /// The writer's counters.
    pub fn stats(&self) -> HistoryStats {
        let c = &self.inner.counters;
        HistoryStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            pruned: c.pruned.load(Ordering::Relaxed),
        }
    }

    /// The stored JSON of `check`'s last `limit` runs, newest first.
    pub async fn runs(&self, check: &str, limit: usize) -> anyhow::Result<Vec<Value>> {
        let check = check.to_string();
        self.read(move |conn| query_runs(conn, &check, limit)).await
    }

    /// `check`'s runs per UTC day over the `days` days up to `now_unix_ms`,
    /// oldest first: (the day's start, unix ms; runs; good runs).
    pub async fn daily(
        &self,
        check: &str,
        days: u64,
        now_unix_ms: u64,
    ) -> anyhow::Result<Vec<(u64, u64, u64)>> {
        let check = check.to_string();
        self.read(move |conn| {
            let today = now_unix_ms / DAY_MS * DAY_MS;
            let since = today.saturating_sub((days.max(1) - 1) * DAY_MS);
            let mut stmt = conn.prepare_cached(
                "SELECT started_unix_ms / ?3, COUNT(*), SUM(status IN (?4, ?5))
                 FROM runs WHERE check_name = ?1 AND started_unix_ms >= ?2
                 GROUP BY started_unix_ms / ?3",
            )?;
            let counted: std::collections::HashMap<u64, (u64, u64)> = stmt
                .query_map(
                    params![
                        check,
                        since as i64,
                        DAY_MS as i64,
                        Status::Pass.as_str(),
                        Status::Degraded.as_str()
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)? as u64,
                            (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
                        ))
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok((0..days.max(1))
                .map(|i| {
                    let day = since + i * DAY_MS;
                    let (all, good) = counted.get(&(day / DAY_MS)).copied().unwrap_or((0, 0));
                    (day, all, good)
                })
                .collect())
        })
        .await
    }

    /// The stored JSON of `check`'s last `limit` failed or errored runs,
    /// newest first.
    pub async fn failures(&self, check: &str, limit: usize) -> anyhow::Result<Vec<Value>> {
        let check = check.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record_json FROM runs WHERE check_name = ?1 AND status IN (?2, ?3)
                 ORDER BY started_unix_ms DESC, id DESC LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        check,
                        Status::Fail.as_str(),
                        Status::Error.as_str(),
                        limit as i64
                    ],
                    |r| r.get::<_, String>(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .map(parse_json)
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Uptime, latency and the last failure of `check`, relative to
    /// `now_unix_ms`.
    pub async fn summary(&self, check: &str, now_unix_ms: u64) -> anyhow::Result<Summary> {
        let check = check.to_string();
        self.read(move |conn| query_summary(conn, &check, now_unix_ms))
            .await
    }

    /// Where each of `checks` stood at its last stored run, for the checks
    /// with stored runs (one blocking task, one connection).
    pub async fn resume(
        &self,
        checks: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, Resumed>> {
        self.read(move |conn| {
            let mut out = std::collections::HashMap::new();
            for check in checks {
                if let Some(r) = query_resumed(conn, &check)? {
                    out.insert(check, r);
                }
            }
            Ok(out)
        })
        .await
    }

    /// [`History::summary`] of several checks in one go (one blocking task,
    /// one connection), in the order given.
    pub async fn summaries(
        &self,
        checks: Vec<String>,
        now_unix_ms: u64,
    ) -> anyhow::Result<Vec<Summary>> {
        self.read(move |conn| {
            checks
                .iter()
                .map(|check| query_summary(conn, check, now_unix_ms))
                .collect()
        })
        .await
    }

    fn send(&self, msg: Msg) -> Result<(), mpsc::SendError<Msg>> {
        match &self.inner.tx {
            Some(tx) => tx.send(msg),
            None => Err(mpsc::SendError(msg)),
        }
    }

    /// Run `f` with a read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path).with_context(|| {
                    format!("opening the history database {}", inner.path.display())
                })?,
            };
            let out = f(&conn)
                .with_context(|| format!("reading the history database {}", inner.path.display()));
            let mut pool = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < READ_POOL {
                pool.push(conn);
            }
            out
        })
        .await
        .context("history read task failed")?
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Make the file use `auto_vacuum = INCREMENTAL`. A new file gets it before
/// its first table; an existing file without it (written by an older
/// Vantage) is rebuilt once with `VACUUM`, outside WAL mode (the mode is set
/// again by the caller). The rebuild needs as much free disk as the file's
/// live data and takes a moment on a large file; it is logged.
fn ensure_incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if tables == 0 {
        // Empty: the setting applies when the first table is created.
        return conn.pragma_update(None, "auto_vacuum", INCREMENTAL);
    }
    let started = Instant::now();
    conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))?;
    conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
    conn.execute_batch("VACUUM")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "history database converted to incremental auto-vacuum (one VACUUM)"
    );
    Ok(())
}

/// Bring the schema to [`SCHEMA_VERSION`], one transaction per migration.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        bail!(
            "its schema version is {current}, newer than this build of Vantage knows \
             ({SCHEMA_VERSION}); use a newer Vantage or another data directory"
        );
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = from + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration to schema version {to}"))?;
        tx.pragma_update(None, "user_version", to as u32)?;
        tx.commit()?;
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The record as stored: the whole [`RunRecord`] as JSON plus `reason`
/// ([`RunRecord::reason`]), with `result.logs` cut to the last lines that fit
/// [`LOG_EXCERPT_LINES`] and [`LOG_EXCERPT_BYTES`]; `result.logs_omitted`
/// then says how many lines were left out.
///
/// A record still larger than [`MAX_STORED_BYTES`] is shrunk until it fits:
/// texts are cut (ending with [`TRUNCATED_MARKER`]) and lists shortened (a
/// sibling `<name>_omitted` counts what was left out), with ever smaller
/// budgets; as a last resort only the run's status, summary, error and
/// identity are kept. A shrunk record has `"truncated": true`.
pub fn stored_json(record: &RunRecord) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(record)?;
    if let Value::Object(map) = &mut value {
        map.insert("reason".into(), Value::String(record.reason()));
    }
    excerpt_logs(&mut value);
    shrink_to_fit(&mut value, MAX_STORED_BYTES);
    Ok(value)
}

/// Cut `s` to at most `max` bytes, on a character boundary, ending with
/// [`TRUNCATED_MARKER`]; true if it was cut.
pub fn cut_text(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max.saturating_sub(TRUNCATED_MARKER.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push_str(TRUNCATED_MARKER);
    true
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// Shrink `value` (a stored record) until its JSON is at most `max` bytes;
/// see [`stored_json`].
fn shrink_to_fit(value: &mut Value, max: usize) {
    if json_len(value) <= max {
        return;
    }
    // Room for the `truncated` flag.
    let max = max.saturating_sub(32);
    let (mut text, mut items) = (4096, 64);
    loop {
        shrink(value, text, items);
        if json_len(value) <= max {
            break;
        }
        if text == 64 && items == 2 {
            // Last resort: the run's identity, verdict and why.
            if let Some(Value::Object(result)) = value.get_mut("result") {
                result.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "check"
                            | "status"
                            | "summary"
                            | "duration_ms"
                            | "location"
                            | "run_id"
                            | "started_unix_ms"
                            | "error"
                    )
                });
            }
            if let Value::Object(map) = value {
                map.remove("retries");
            }
            shrink(value, 64, 2);
            break;
        }
        text = (text / 2).max(64);
        items = (items / 2).max(2);
    }
    if let Value::Object(map) = value {
        map.insert("truncated".into(), Value::Bool(true));
    }
}

/// Cut every text in `v` to `text` bytes and every list to `items`
/// entries (the first ones; the last ones of `logs`), counting what lists
/// lose in a sibling `<name>_omitted`.
fn shrink(v: &mut Value, text: usize, items: usize) {
    match v {
        Value::String(s) => {
            cut_text(s, text);
        }
        Value::Array(list) => list.iter_mut().for_each(|x| shrink(x, text, items)),
        Value::Object(map) => {
            let mut omitted = Vec::new();
            for (key, x) in map.iter_mut() {
                if let Value::Array(list) = x
                    && list.len() > items
                {
                    let n = list.len() - items;
                    if key == "logs" {
                        list.drain(..n);
                    } else {
                        list.truncate(items);
                    }
                    omitted.push((format!("{key}_omitted"), n as u64));
                }
                shrink(x, text, items);
            }
            for (key, n) in omitted {
                let before = map.get(&key).and_then(Value::as_u64).unwrap_or(0);
                map.insert(key, Value::from(before + n));
            }
        }
        _ => {}
    }
}

/// Cut `result.logs` to the last lines that fit [`LOG_EXCERPT_LINES`] and
/// [`LOG_EXCERPT_BYTES`], counting the others in `result.logs_omitted`.
fn excerpt_logs(value: &mut Value) {
    let Some(logs) = value
        .pointer_mut("/result/logs")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let total = logs.len();
    let mut kept = Vec::new();
    let mut bytes = 0;
    for line in logs.iter_mut().rev() {
        if kept.len() == LOG_EXCERPT_LINES || bytes >= LOG_EXCERPT_BYTES {
            break;
        }
        if let Some(Value::String(message)) = line.get_mut("message") {
            let room = LOG_EXCERPT_BYTES - bytes;
            if message.len() > room {
                if !kept.is_empty() {
                    break;
                }
                // A single huge line: keep its beginning.
                let mut cut = room.saturating_sub(3);
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                message.push_str("...");
            }
            bytes += message.len();
        }
        kept.push(line.take());
    }
    kept.reverse();
    let omitted = total - kept.len();
    *logs = kept;
    if omitted > 0 {
        value["result"]["logs_omitted"] = Value::from(omitted);
    }
}

struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Msg>,
    retention: Retention,
    counters: Arc<Counters>,
    since_prune: u64,
    last_prune: Instant,
    /// Stored runs per check, kept in step with the table so the per-check
    /// cap is applied on insert without counting rows.
    counts: std::collections::HashMap<String, u64>,
}

impl Writer {
    fn run(mut self) {
        match count_runs(&self.conn) {
            Ok(counts) => self.counts = counts,
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not count stored runs"),
        }
        self.prune_logged();
        loop {
            let first = match self.rx.recv_timeout(PRUNE_INTERVAL) {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.prune_logged();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut records = Vec::new();
            let mut replies = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next {
                match msg {
                    Msg::Record(r) => records.push(r),
                    other => replies.push(other),
                }
                next = if records.len() < BATCH_MAX {
                    self.rx.try_recv().ok()
                } else {
                    None
                };
            }
            self.counters
                .queued
                .fetch_sub(records.len(), Ordering::AcqRel);
            if !records.is_empty() {
                self.insert(&records);
            }
            if self.since_prune >= PRUNE_EVERY_INSERTS
                || self.last_prune.elapsed() >= PRUNE_INTERVAL
            {
                self.prune_logged();
            }
            for reply in replies {
                match reply {
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                    Msg::Prune(done) => {
                        let _ = done.send(self.prune());
                    }
                    Msg::Record(_) => unreachable!("records are batched above"),
                }
            }
        }
    }

    fn insert(&mut self, records: &[Arc<RunRecord>]) {
        let n = records.len() as u64;
        let max_runs = self.retention.max_runs_per_check;
        match insert_batch(&mut self.conn, records, &mut self.counts, max_runs) {
            Ok(deleted) => {
                self.counters.written.fetch_add(n, Ordering::Relaxed);
                self.counters.pruned.fetch_add(deleted, Ordering::Relaxed);
                self.since_prune += n;
                if deleted > 0 {
                    self.reclaim_logged();
                }
            }
            Err(e) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    error = format!("{e:#}"),
                    runs = n,
                    "could not write run history"
                );
            }
        }
    }

    fn prune(&mut self) -> anyhow::Result<u64> {
        self.since_prune = 0;
        self.last_prune = Instant::now();
        let deleted = prune(
            &mut self.conn,
            &self.retention,
            now_unix_ms(),
            &mut self.counts,
        )?;
        self.counters.pruned.fetch_add(deleted, Ordering::Relaxed);
        if deleted > 0 {
            self.reclaim_logged();
        }
        Ok(deleted)
    }

    fn reclaim_logged(&mut self) {
        if let Err(e) = reclaim(&self.conn) {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not give back free space of the run history"
            );
        }
    }

    fn prune_logged(&mut self) {
        if let Err(e) = self.prune() {
            tracing::warn!(error = format!("{e:#}"), "could not prune run history");
        }
    }
}

/// Stored runs per check.
fn count_runs(conn: &Connection) -> rusqlite::Result<std::collections::HashMap<String, u64>> {
    conn.prepare("SELECT check_name, COUNT(*) FROM runs GROUP BY check_name")?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
        .collect()
}

/// Delete `check`'s oldest `n` runs; returns how many were deleted.
fn delete_oldest(tx: &rusqlite::Transaction<'_>, check: &str, n: u64) -> rusqlite::Result<u64> {
    Ok(tx.execute(
        "DELETE FROM runs WHERE id IN (
            SELECT id FROM runs WHERE check_name = ?1
            ORDER BY started_unix_ms ASC, id ASC LIMIT ?2)",
        params![check, to_i64(n)],
    )? as u64)
}

/// Give free pages back to the file system when there are many
/// ([`SPARE_PAGES_MAX`] and a quarter of the file), then checkpoint the
/// write-ahead log so the file shrinks now.
fn reclaim(conn: &Connection) -> rusqlite::Result<()> {
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    if (free as u64) < SPARE_PAGES_MAX || free.saturating_mul(4) < pages {
        return Ok(());
    }
    // The pragma frees one page per step (it yields a row for each): step
    // it to the end.
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    tracing::debug!(pages = free, "history: free pages given back");
    Ok(())
}

/// Insert `records` in one transaction, deleting in it the oldest runs of
/// each check beyond `max_runs`; `counts` (runs per check) is updated when
/// the transaction commits. Returns how many runs were deleted.
fn insert_batch(
    conn: &mut Connection,
    records: &[Arc<RunRecord>],
    counts: &mut std::collections::HashMap<String, u64>,
    max_runs: u64,
) -> anyhow::Result<u64> {
    let tx = conn.transaction()?;
    let mut added: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO runs (check_name, location, run_id, started_unix_ms, planned_unix_ms,
                lateness_ms, status, state, duration_ms, summary, reason, attempts, maintenance,
                record_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for r in records {
            let json = serde_json::to_string(&stored_json(r)?)?;
            let mut summary = r.result.summary.clone();
            cut_text(&mut summary, MAX_COLUMN_BYTES);
            let mut reason = r.reason();
            cut_text(&mut reason, MAX_COLUMN_BYTES);
            *added.entry(r.check()).or_default() += 1;
            stmt.execute(params![
                r.check(),
                r.location(),
                r.result.run_id,
                to_i64(r.result.started_unix_ms),
                to_i64(r.planned_unix_ms),
                r.lateness_ms,
                r.result.status.as_str(),
                r.state.as_str(),
                r.result.duration_ms,
                summary,
                reason,
                (r.retries.len() + 1) as i64,
                r.maintenance,
                json,
            ])?;
        }
    }
    let mut deleted = 0;
    let mut after = Vec::with_capacity(added.len());
    for (check, n) in added {
        let total = counts.get(check).copied().unwrap_or(0) + n;
        let over = total.saturating_sub(max_runs);
        if over > 0 {
            deleted += delete_oldest(&tx, check, over)?;
        }
        after.push((check, total - over));
    }
    tx.commit()?;
    for (check, n) in after {
        counts.insert(check.to_string(), n);
    }
    Ok(deleted)
}

/// Delete what the retention no longer keeps: runs older than its age, and
/// per check the oldest runs beyond its count (by `counts`, the runs per
/// check, updated when the transaction commits). Returns how many runs.
fn prune(
    conn: &mut Connection,
    retention: &Retention,
    now_unix_ms: u64,
    counts: &mut std::collections::HashMap<String, u64>,
) -> anyhow::Result<u64> {
    let tx = conn.transaction()?;
    let cutoff = now_unix_ms.saturating_sub(retention.max_age.as_millis() as u64);
    let mut after = counts.clone();
    let mut deleted = 0;
    {
        let mut stmt =
            tx.prepare("DELETE FROM runs WHERE started_unix_ms < ?1 RETURNING check_name")?;
        let mut rows = stmt.query(params![to_i64(cutoff)])?;
        while let Some(row) = rows.next()? {
            let check: String = row.get(0)?;
            if let Some(n) = after.get_mut(&check) {
                *n = n.saturating_sub(1);
            }
            deleted += 1;
        }
    }
    for (check, n) in after.iter_mut() {
        let over = n.saturating_sub(retention.max_runs_per_check);
        if over > 0 {
            deleted += delete_oldest(&tx, check, over)?;
            *n -= over;
        }
    }
    tx.commit()?;
    after.retain(|_, n| *n > 0);
    *counts = after;
    Ok(deleted)
}

fn parse_json(text: String) -> rusqlite::Result<Value> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn parse_state(s: &str) -> Option<CheckState> {
    CheckState::ALL.into_iter().find(|c| c.as_str() == s)
}

/// [`Resumed`] of `check`: walks its runs newest first, only as far as the
/// last streak and the last down episode reach.
fn query_resumed(conn: &Connection, check: &str) -> anyhow::Result<Option<Resumed>> {
    let runs: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM runs WHERE check_name = ?1")?
        .query_row(params![check], |r| r.get(0))?;
    if runs == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT status, state, maintenance IS NOT NULL, started_unix_ms FROM runs
         WHERE check_name = ?1 ORDER BY started_unix_ms DESC, id DESC",
    )?;
    let mut rows = stmt.query(params![check])?;
    let mut resumed: Option<Resumed> = None;
    let (mut streak_open, mut episode_open) = (true, true);
    while let Some(row) = rows.next()? {
        let status: String = row.get(0)?;
        let state: String = row.get(1)?;
        let in_window: bool = row.get(2)?;
        let started = row.get::<_, i64>(3)?.max(0) as u64;
        let good = status == Status::Pass.as_str() || status == Status::Degraded.as_str();
        let state = parse_state(&state)
            .with_context(|| format!("unknown state {state:?} in a stored run of {check}"))?;
        let r = match &mut resumed {
            Some(r) => r,
            None => resumed.insert(Resumed {
                state,
                good_streak: 0,
                bad_streak: 0,
                runs: runs as u64,
                down_since_unix_ms: None,
                alert_sent: false,
                in_maintenance: in_window,
            }),
        };
        if streak_open {
            let (same, streak) = if good {
                (r.bad_streak == 0, &mut r.good_streak)
            } else {
                (r.good_streak == 0, &mut r.bad_streak)
            };
            if same {
                *streak = streak.saturating_add(1);
            } else {
                streak_open = false;
            }
        }
        if episode_open {
            if r.state == CheckState::Down && state == CheckState::Down {
                r.down_since_unix_ms = Some(started);
                r.alert_sent |= !in_window;
            } else {
                episode_open = false;
            }
        }
        if !streak_open && !episode_open {
            break;
        }
    }
    Ok(resumed)
}

fn query_runs(conn: &Connection, check: &str, limit: usize) -> anyhow::Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(
        "SELECT record_json FROM runs WHERE check_name = ?1
         ORDER BY started_unix_ms DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![check, to_i64(limit as u64)], |r| {
            parse_json(r.get(0)?)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// `(runs, good runs)` of `check` that started at or after `since`.
fn count_since(conn: &Connection, check: &str, since: u64) -> anyhow::Result<(u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(status IN (?3, ?4)), 0) FROM runs
         WHERE check_name = ?1 AND started_unix_ms >= ?2",
    )?;
    let (all, good): (i64, i64) = stmt.query_row(
        params![
            check,
            to_i64(since),
            Status::Pass.as_str(),
            Status::Degraded.as_str()
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((all as u64, good as u64))
}

fn query_summary(conn: &Connection, check: &str, now_unix_ms: u64) -> anyhow::Result<Summary> {
    let ratio = |(all, good): (u64, u64)| (all > 0).then(|| good as f64 / all as f64);
    let day = count_since(conn, check, now_unix_ms.saturating_sub(DAY_MS))?;
    let week = count_since(conn, check, now_unix_ms.saturating_sub(7 * DAY_MS))?;

    let mut stmt = conn.prepare_cached(
        "SELECT started_unix_ms, duration_ms FROM runs WHERE check_name = ?1
         ORDER BY started_unix_ms DESC, id DESC LIMIT ?2",
    )?;
    let mut latency = stmt
        .query_map(params![check, LATENCY_POINTS as i64], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, f64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    latency.reverse();

    let last_failure = conn
        .prepare_cached(
            "SELECT record_json FROM runs WHERE check_name = ?1 AND status IN (?2, ?3)
             ORDER BY started_unix_ms DESC, id DESC LIMIT 1",
        )?
        .query_row(
            params![check, Status::Fail.as_str(), Status::Error.as_str()],
            |r| parse_json(r.get(0)?),
        )
        .optional()?;

    Ok(Summary {
        uptime_24h: ratio(day),
        uptime_7d: ratio(week),
        runs_24h: day.0,
        latency,
        last_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::CheckState;
    use crate::result::{Level, LogLine};
    use crate::sinks::testing::run_record;

    const NOW: u64 = 1_750_000_000_000;
    const MIN: u64 = 60_000;

    fn record(check: &str, started: u64, status: Status, duration_ms: f64) -> Arc<RunRecord> {
        let state = if matches!(status, Status::Pass | Status::Degraded) {
            CheckState::Up
        } else {
            CheckState::Down
        };
        let mut r = run_record(check, started, status, state);
        r.result.summary = format!("{} at {started}", status.as_str());
        r.result.duration_ms = duration_ms;
        Arc::new(r)
    }

    /// History whose age retention does not interfere with fixed timestamps.
    pub(super) fn open(dir: &Path) -> History {
        History::open(
            dir,
            Retention {
                max_age: Duration::from_secs(100 * 365 * 24 * 3600),
                ..Retention::default()
            },
        )
        .unwrap()
    }

    fn run_ids(runs: &[Value]) -> Vec<&str> {
        runs.iter()
            .map(|r| r["result"]["run_id"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn records_read_back_newest_first_with_limit() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        // Out of order on purpose: reads sort by start time.
        for t in [2, 0, 3, 1] {
            h.record(record("web", NOW + t * MIN, Status::Pass, 10.0));
        }
        h.record(record("other", NOW, Status::Fail, 10.0));
        h.flush().await;
        let runs = h.runs("web", 10).await.unwrap();
        let t = |i: u64| format!("web-{}", NOW + i * MIN);
        assert_eq!(run_ids(&runs), [t(3), t(2), t(1), t(0)]);
        let runs = h.runs("web", 2).await.unwrap();
        assert_eq!(run_ids(&runs), [t(3), t(2)]);
        assert!(h.runs("nope", 10).await.unwrap().is_empty());
        // The whole record is stored.
        assert_eq!(runs[0]["state"], "up");
        assert_eq!(runs[0]["severity"], "critical");
        assert_eq!(runs[0]["result"]["status"], "pass");
        assert_eq!(h.stats().written, 5);
        assert_eq!(h.stats().dropped, 0);
    }

    #[tokio::test]
    async fn flush_waits_for_everything_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        for i in 0..2_000 {
            h.record(record("web", NOW + i, Status::Pass, 1.0));
        }
        h.flush().await;
        assert_eq!(h.stats().written, 2_000);
        assert_eq!(h.runs("web", 5000).await.unwrap().len(), 2_000);
        // Flushing with nothing queued returns at once; clones share the writer.
        h.clone().flush().await;
    }

    #[tokio::test]
    async fn summary_computes_uptime_latency_and_last_failure() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let empty = h.summary("web", NOW).await.unwrap();
        assert_eq!(empty, Summary::default());

        // Last 24 h: 3 pass, 1 degraded, 1 fail, 1 error (4/6 good).
        let statuses = [
            Status::Pass,
            Status::Degraded,
            Status::Fail,
            Status::Pass,
            Status::Error,
            Status::Pass,
        ];
        for (i, s) in statuses.iter().enumerate() {
            h.record(record(
                "web",
                NOW - (i as u64 + 1) * MIN,
                *s,
                (i + 1) as f64,
            ));
        }
        // Three days ago: 2 fail (the week is 4/8 good).
        for i in 0..2 {
            h.record(record(
                "web",
                NOW - 3 * DAY_MS - i * MIN,
                Status::Fail,
                50.0,
            ));
        }
        // Eight days ago: outside both windows.
        h.record(record("web", NOW - 8 * DAY_MS, Status::Fail, 70.0));
        h.flush().await;

        let s = h.summary("web", NOW).await.unwrap();
        assert_eq!(s.runs_24h, 6);
        assert!((s.uptime_24h.unwrap() - 4.0 / 6.0).abs() < 1e-9, "{s:?}");
        assert!((s.uptime_7d.unwrap() - 4.0 / 8.0).abs() < 1e-9, "{s:?}");
        // Oldest first, ending with the newest run.
        assert_eq!(s.latency.len(), 9);
        assert_eq!(s.latency[0], (NOW - 8 * DAY_MS, 70.0));
        assert_eq!(*s.latency.last().unwrap(), (NOW - MIN, 1.0));
        assert!(s.latency.windows(2).all(|w| w[0].0 <= w[1].0));
        // The newest bad run is the failure three minutes ago.
        let lf = s.last_failure.unwrap();
        assert_eq!(lf["result"]["status"], "fail");
        assert_eq!(lf["result"]["started_unix_ms"], NOW - 3 * MIN);

        // Only runs in the last 24 h and all good.
        h.record(record("ok", NOW - MIN, Status::Degraded, 1.0));
        h.flush().await;
        let s = h.summary("ok", NOW).await.unwrap();
        assert_eq!((s.uptime_24h, s.uptime_7d), (Some(1.0), Some(1.0)));
        assert!(s.last_failure.is_none());

        // summaries() agrees with summary(), in order.
        let many = h
            .summaries(vec!["ok".into(), "none".into()], NOW)
            .await
            .unwrap();
        assert_eq!(many, vec![s, Summary::default()]);
    }

    #[tokio::test]
    async fn latency_keeps_the_last_sixty_runs() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        for i in 0..100 {
            h.record(record(
                "web",
                NOW - DAY_MS + i * MIN,
                Status::Pass,
                i as f64,
            ));
        }
        h.flush().await;
        let s = h.summary("web", NOW).await.unwrap();
        assert_eq!(s.latency.len(), LATENCY_POINTS);
        assert_eq!(s.latency[0].1, 40.0);
        assert_eq!(s.latency[59].1, 99.0);
    }

    #[tokio::test]
    async fn retention_by_count_keeps_the_newest_runs_per_check() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(
            dir.path(),
            Retention {
                max_age: Duration::from_secs(100 * 365 * 24 * 3600),
                max_runs_per_check: 3,
            },
        )
        .unwrap();
        for i in 0..5 {
            h.record(record("a", NOW + i * MIN, Status::Pass, 1.0));
        }
        h.record(record("b", NOW, Status::Pass, 1.0));
        // The cap is applied as runs are written: nothing is left to prune.
        h.flush().await;
        assert_eq!(h.prune().await.unwrap(), 0);
        let runs = h.runs("a", 10).await.unwrap();
        let t = |i: u64| format!("a-{}", NOW + i * MIN);
        assert_eq!(run_ids(&runs), [t(4), t(3), t(2)]);
        assert_eq!(h.runs("b", 10).await.unwrap().len(), 1);
        assert_eq!(h.stats().pruned, 2);
    }

    #[tokio::test]
    async fn retention_by_age_deletes_old_runs() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(
            dir.path(),
            Retention {
                max_age: Duration::from_secs(3600),
                max_runs_per_check: 100,
            },
        )
        .unwrap();
        let now = now_unix_ms();
        h.record(record("a", now - 2 * 3600 * 1000, Status::Pass, 1.0));
        h.record(record("a", now - 30 * MIN, Status::Pass, 1.0));
        assert_eq!(h.prune().await.unwrap(), 1);
        let runs = h.runs("a", 10).await.unwrap();
        assert_eq!(run_ids(&runs), [format!("a-{}", now - 30 * MIN)]);
    }

    #[tokio::test]
    async fn reopening_keeps_old_runs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        {
            let h = open(&data);
            h.record(record("web", NOW, Status::Pass, 1.0));
            h.record(record("web", NOW + MIN, Status::Fail, 1.0));
            // No flush: dropping the last handle drains the queue.
        }
        assert!(data.join(FILE_NAME).exists());
        let h = open(&data);
        let runs = h.runs("web", 10).await.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0]["result"]["status"], "fail");
        // Still writable after reopening.
        h.record(record("web", NOW + 2 * MIN, Status::Pass, 1.0));
        h.flush().await;
        assert_eq!(h.runs("web", 10).await.unwrap().len(), 3);
    }

    #[test]
    fn schema_version_is_set_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let path = dir.path().join(FILE_NAME);
        let conn = Connection::open(&path).unwrap();
        let v: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = format!(
            "{:#}",
            History::open(dir.path(), Retention::default()).unwrap_err()
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn open_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = format!(
            "{:#}",
            History::open(&file, Retention::default()).unwrap_err()
        );
        assert!(err.contains(&file.display().to_string()), "{err}");
    }

    #[test]
    fn stored_logs_are_an_excerpt_of_the_last_lines() {
        let mut r = (*record("web", NOW, Status::Fail, 1.0)).clone();
        r.result.logs = (0..200)
            .map(|i| LogLine {
                level: Level::Info,
                message: format!("line {i}"),
            })
            .collect();
        let v = stored_json(&r).unwrap();
        let logs = v["result"]["logs"].as_array().unwrap();
        assert_eq!(logs.len(), LOG_EXCERPT_LINES);
        assert_eq!(logs[0]["message"], "line 150");
        assert_eq!(logs[49]["message"], "line 199");
        assert_eq!(v["result"]["logs_omitted"], 150);

        // Big lines: the byte budget wins.
        r.result.logs = (0..10)
            .map(|i| LogLine {
                level: Level::Warn,
                message: format!("{i}{}", "é".repeat(1000)),
            })
            .collect();
        let v = stored_json(&r).unwrap();
        let logs = v["result"]["logs"].as_array().unwrap();
        let bytes: usize = logs
            .iter()
            .map(|l| l["message"].as_str().unwrap().len())
            .sum();
        assert!(bytes <= LOG_EXCERPT_BYTES, "{bytes}");
        assert_eq!(logs.len(), 4);
        assert!(logs[3]["message"].as_str().unwrap().starts_with('9'));

        // One huge line is cut, on a character boundary.
        r.result.logs = vec![LogLine {
            level: Level::Error,
            message: "é".repeat(10_000),
        }];
        let v = stored_json(&r).unwrap();
        let m = v["result"]["logs"][0]["message"].as_str().unwrap();
        assert!(
            m.len() <= LOG_EXCERPT_BYTES && m.ends_with("..."),
            "{}",
            m.len()
        );
        assert!(v["result"].get("logs_omitted").is_none());

        // Few short lines: untouched.
        r.result.logs = (0..3)
            .map(|i| LogLine {
                level: Level::Debug,
                message: format!("short {i}"),
            })
            .collect();
        let mut v = stored_json(&r).unwrap();
        assert_eq!(v["reason"], r.reason());
        v.as_object_mut().unwrap().remove("reason");
        assert_eq!(v, serde_json::to_value(&r).unwrap());
    }
}

#[cfg(test)]
#[path = "history_size_tests.rs"]
mod size_tests;

#[cfg(test)]
#[path = "history_resume_tests.rs"]
mod resume_tests;
