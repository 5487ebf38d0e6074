//! Tests of the history's size bounds: the per-run cap, the per-check cap
//! on insert, and giving free space back (incremental vacuum).

use super::*;
use crate::result::Assertion;
use crate::result::CheckState;
use crate::sinks::testing::run_record;

const NOW: u64 = 1_750_000_000_000;

/// A failing run whose summary and assertion details are `text_bytes`
/// each: a "large result".
fn large(check: &str, started: u64, text_bytes: usize) -> Arc<RunRecord> {
    let mut r = run_record(check, started, Status::Fail, CheckState::Down);
    r.result.summary = format!("{started} {}", "s".repeat(text_bytes));
    r.result.assertions = (0..200)
        .map(|i| Assertion {
            name: format!("assertion {i}"),
            passed: false,
            warn: false,
            detail: "d".repeat(text_bytes / 200),
            duration_ms: None,
        })
        .collect();
    Arc::new(r)
}

fn retention(max_runs: u64) -> Retention {
    Retention {
        max_age: Duration::from_secs(100 * 365 * 24 * 3600),
        max_runs_per_check: max_runs,
    }
}

/// The database file plus its write-ahead log, bytes.
fn disk_bytes(dir: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let p = dir.join(format!("{FILE_NAME}{suffix}"));
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}

fn count(conn: &Connection, check: &str) -> u64 {
    conn.query_row(
        "SELECT COUNT(*) FROM runs WHERE check_name = ?1",
        params![check],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

#[test]
fn a_large_record_is_cut_to_the_cap_with_a_marker() {
    let r = large("web", NOW, 512 * 1024);
    let v = stored_json(&r).unwrap();
    let len = serde_json::to_vec(&v).unwrap().len();
    assert!(len <= MAX_STORED_BYTES, "{len}");
    assert_eq!(v["truncated"], true);
    // What identifies the run and its verdict survives.
    assert_eq!(v["result"]["check"], "web");
    assert_eq!(v["result"]["status"], "fail");
    assert_eq!(v["result"]["run_id"], format!("web-{NOW}"));
    assert_eq!(v["state"], "down");
    let summary = v["result"]["summary"].as_str().unwrap();
    assert!(summary.starts_with(&NOW.to_string()), "{summary}");
    assert!(summary.ends_with(TRUNCATED_MARKER), "{summary}");
    // Lists say how much they lost.
    let kept = v["result"]["assertions"].as_array().map_or(0, Vec::len);
    assert_eq!(
        v["result"]["assertions_omitted"]
            .as_u64()
            .unwrap_or(200 - kept as u64)
            + kept as u64,
        200,
        "{v}"
    );

    // A small record is untouched and not flagged.
    let small = large("web", NOW, 100);
    let v = stored_json(&small).unwrap();
    assert!(v.get("truncated").is_none());
    assert_eq!(v["result"]["assertions"].as_array().unwrap().len(), 200);
}

#[test]
fn cut_text_keeps_characters_whole() {
    let mut s = "é".repeat(100);
    assert!(cut_text(&mut s, 51));
    assert!(s.len() <= 51 && s.ends_with(TRUNCATED_MARKER), "{s}");
    let mut short = "abc".to_string();
    assert!(!cut_text(&mut short, 3));
    assert_eq!(short, "abc");
}

/// The case: large results, a small `history_max_runs`. The cap
/// holds after every write, and the file stays small although far more
/// data went through it than it keeps.
#[tokio::test]
async fn large_results_keep_the_row_cap_and_the_file_small() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), retention(5)).unwrap();
    let check = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let mut peak = 0;
    for i in 0..24u64 {
        h.record(large("a", NOW + i, 128 * 1024));
        h.record(large("b", NOW + i, 128 * 1024));
        if i % 3 == 2 {
            h.flush().await;
            assert!(count(&check, "a") <= 5, "run {i}: {}", count(&check, "a"));
            assert!(count(&check, "b") <= 5, "run {i}: {}", count(&check, "b"));
            peak = peak.max(disk_bytes(dir.path()));
        }
    }
    h.flush().await;
    assert_eq!(count(&check, "a"), 5);
    // The newest runs are the ones kept.
    let runs = h.runs("a", 10).await.unwrap();
    assert_eq!(runs[0]["result"]["run_id"], format!("a-{}", NOW + 23));
    assert_eq!(runs[4]["result"]["run_id"], format!("a-{}", NOW + 19));
    assert_eq!(runs[0]["truncated"], true);
    // ~18 MB of results went in; 10 rows of at most ~72 KiB stay.
    assert!(peak < 8 * 1024 * 1024, "file peaked at {peak} bytes");
    assert_eq!(h.stats().written, 48);
    assert_eq!(h.stats().pruned, 38);
    // The summary and reason columns are capped too.
    let (summary, reason): (String, String) = check
        .query_row(
            "SELECT summary, reason FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(summary.len() <= MAX_COLUMN_BYTES && summary.ends_with(TRUNCATED_MARKER));
    assert!(reason.len() <= MAX_COLUMN_BYTES && reason.ends_with(TRUNCATED_MARKER));
}

#[tokio::test]
async fn new_files_use_incremental_vacuum_and_give_pruned_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), retention(1_000)).unwrap();
    for i in 0..100 {
        h.record(large("a", NOW + i, 64 * 1024));
    }
    h.flush().await;
    let full = disk_bytes(dir.path());
    assert!(full > 2 * 1024 * 1024, "{full}");
    drop(h);
    // Reopen with a smaller cap: the start-up prune deletes 95 runs and
    // the file shrinks.
    let h = History::open(dir.path(), retention(5)).unwrap();
    h.flush().await;
    assert_eq!(h.runs("a", 1_000).await.unwrap().len(), 5);
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "auto_vacuum should be INCREMENTAL");
    let after = disk_bytes(dir.path());
    assert!(after < full / 4, "{full} -> {after} bytes");
}

/// A file written before incremental vacuum (auto_vacuum NONE, WAL, with
/// free pages) is converted on open, keeping every run.
#[tokio::test]
async fn an_old_file_is_converted_once_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
        let mut counts = std::collections::HashMap::new();
        let records: Vec<_> = (0..80).map(|i| large("a", NOW + i, 64 * 1024)).collect();
        insert_batch(&mut conn, &records, &mut counts, 1_000).unwrap();
        conn.execute(
            "DELETE FROM runs WHERE started_unix_ms < ?1",
            params![to_i64(NOW + 77)],
        )
        .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let mode: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 0);
    }
    let before = disk_bytes(dir.path());
    assert!(before > 2 * 1024 * 1024, "{before}");
    let h = History::open(dir.path(), retention(1_000)).unwrap();
    let runs = h.runs("a", 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["result"]["run_id"], format!("a-{}", NOW + 79));
    let after = disk_bytes(dir.path());
    assert!(after < before / 4, "{before} -> {after} bytes");
    // Still WAL, now incremental, and writable.
    let conn = Connection::open(&path).unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2);
    let journal: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    h.record(large("a", NOW + 80, 10));
    h.flush().await;
    assert_eq!(h.runs("a", 10).await.unwrap().len(), 4);
}
