//! The on-disk queue of one remote-write receiver: SQLite in the daemon's
//! data directory, so that samples wait out a receiver's absence (and a
//! restart of the daemon) and leave in the order they were written.
//!
//! A row is one run's samples for one shard (a protobuf `WriteRequest`,
//! uncompressed), with when the samples were taken and when the row was
//! queued. A shard reads its rows in order and deletes them once the
//! receiver took them. The queue is bounded by bytes (the oldest rows of
//! any shard go first) and by age (rows older than `max_age` are not
//! sent); what either drops is counted, never silently lost.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use prost::Message as _;
use rusqlite::{Connection, params};

use super::proto::WriteRequest;

/// Why samples were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The queue reached its size bound.
    Size,
    /// They were older than `max_age`.
    Age,
}

/// Rows read for one request.
#[derive(Debug, Default)]
pub struct Batch {
    /// The last row id read (acknowledge up to it).
    pub last_id: i64,
    /// When the oldest row was queued, unix ms.
    pub oldest_queued_ms: i64,
    /// The rows' requests, in order.
    pub requests: Vec<WriteRequest>,
    /// Their samples.
    pub samples: u64,
}

/// One receiver's queue.
#[derive(Debug)]
pub struct Queue {
    db: Mutex<Connection>,
    max_bytes: u64,
    max_age: Duration,
}

/// What [`Queue`] operations report for the metrics.
pub type Drops = Vec<(Dropped, u64)>;

impl Queue {
    /// Open (or create) the queue at `path`.
    pub fn open(path: &Path, max_bytes: u64, max_age: Duration) -> rusqlite::Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 shard INTEGER NOT NULL,
                 taken_ms INTEGER NOT NULL,
                 queued_ms INTEGER NOT NULL,
                 samples INTEGER NOT NULL,
                 payload BLOB NOT NULL
             );
             CREATE INDEX IF NOT EXISTS queue_shard ON queue (shard, id);",
        )?;
        Ok(Queue {
            db: Mutex::new(db),
            max_bytes,
            max_age,
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `request` (samples taken at `taken_ms`) for `shard`; then keep
    /// the queue within its size bound, dropping its oldest rows.
    pub fn push(
        &self,
        shard: u32,
        taken_ms: i64,
        now_ms: i64,
        request: &WriteRequest,
    ) -> rusqlite::Result<Drops> {
        let payload = request.encode_to_vec();
        let db = self.db();
        db.execute(
            "INSERT INTO queue (shard, taken_ms, queued_ms, samples, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![shard, taken_ms, now_ms, request.samples() as i64, payload],
        )?;
        let mut drops = Vec::new();
        loop {
            let bytes: i64 = db.query_row(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM queue",
                [],
                |r| r.get(0),
            )?;
            if bytes as u64 <= self.max_bytes {
                break;
            }
            // The oldest rows, a few at a time, until it fits.
            let (last, samples): (i64, i64) = db.query_row(
                "SELECT MAX(id), COALESCE(SUM(samples), 0) FROM (SELECT id, samples FROM queue ORDER BY id LIMIT 16)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            db.execute("DELETE FROM queue WHERE id <= ?1", params![last])?;
            drops.push((Dropped::Size, samples as u64));
        }
        Ok(drops)
    }

    /// Drop the rows whose samples are older than `max_age` at `now_ms`.
    pub fn expire(&self, now_ms: i64) -> rusqlite::Result<Drops> {
        let cutoff = now_ms - self.max_age.as_millis() as i64;
        let db = self.db();
        let samples: i64 = db.query_row(
            "SELECT COALESCE(SUM(samples), 0) FROM queue WHERE taken_ms < ?1",
            params![cutoff],
            |r| r.get(0),
        )?;
        if samples == 0 {
            return Ok(Vec::new());
        }
        db.execute("DELETE FROM queue WHERE taken_ms < ?1", params![cutoff])?;
        Ok(vec![(Dropped::Age, samples as u64)])
    }

    /// The oldest rows of `shard`, up to `max_samples` samples (at least
    /// one row whatever its size).
    pub fn peek(&self, shard: u32, max_samples: u64) -> rusqlite::Result<Batch> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, queued_ms, samples, payload FROM queue WHERE shard = ?1 ORDER BY id LIMIT 512",
        )?;
        let mut rows = stmt.query(params![shard])?;
        let mut batch = Batch::default();
        while let Some(row) = rows.next()? {
            let samples: i64 = row.get(2)?;
            if !batch.requests.is_empty() && batch.samples + samples as u64 > max_samples {
                break;
            }
            let payload: Vec<u8> = row.get(3)?;
            let request = WriteRequest::decode(payload.as_slice()).unwrap_or_default();
            if batch.requests.is_empty() {
                batch.oldest_queued_ms = row.get(1)?;
            }
            batch.last_id = row.get(0)?;
            batch.samples += samples as u64;
            batch.requests.push(request);
        }
        Ok(batch)
    }

    /// The receiver took (or refused for good) `shard`'s rows up to `id`.
    pub fn ack(&self, shard: u32, id: i64) -> rusqlite::Result<()> {
        self.db().execute(
            "DELETE FROM queue WHERE shard = ?1 AND id <= ?2",
            params![shard, id],
        )?;
        Ok(())
    }

    /// Samples waiting, over every shard.
    pub fn pending(&self) -> u64 {
        self.db()
            .query_row("SELECT COALESCE(SUM(samples), 0) FROM queue", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Label, Sample, TimeSeries};
    use super::*;

    fn request(n: usize, t: i64) -> WriteRequest {
        WriteRequest {
            timeseries: (0..n)
                .map(|i| TimeSeries {
                    labels: vec![Label {
                        name: "__name__".into(),
                        value: format!("m{i}"),
                    }],
                    samples: vec![Sample {
                        value: i as f64,
                        timestamp: t,
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn rows_leave_in_order_per_shard_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        {
            let q = Queue::open(&path, 1 << 20, Duration::from_secs(3600)).unwrap();
            for t in 0..5 {
                q.push(t as u32 % 2, 1000 + t, 1000 + t, &request(3, 1000 + t))
                    .unwrap();
            }
            assert_eq!(q.pending(), 15);
        }
        let q = Queue::open(&path, 1 << 20, Duration::from_secs(3600)).unwrap();
        let batch = q.peek(0, 6).unwrap();
        let times: Vec<i64> = batch
            .requests
            .iter()
            .map(|r| r.timeseries[0].samples[0].timestamp)
            .collect();
        assert_eq!(times, [1000, 1002]);
        assert_eq!(batch.samples, 6);
        q.ack(0, batch.last_id).unwrap();
        let rest: Vec<i64> = q
            .peek(0, 100)
            .unwrap()
            .requests
            .iter()
            .map(|r| r.timeseries[0].samples[0].timestamp)
            .collect();
        assert_eq!(rest, [1004]);
        assert_eq!(q.pending(), 9);
        // A row larger than the batch still leaves, alone.
        assert_eq!(q.peek(1, 1).unwrap().requests.len(), 1);
    }

    #[test]
    fn the_bounds_drop_the_oldest_and_count_them() {
        let dir = tempfile::tempdir().unwrap();
        let one = request(50, 0).encode_to_vec().len() as u64;
        let q = Queue::open(
            &dir.path().join("q.sqlite"),
            one * 3,
            Duration::from_secs(60),
        )
        .unwrap();
        let mut dropped = 0;
        for t in 0..10 {
            for (why, n) in q
                .push(0, t * 1000, t * 1000, &request(50, t * 1000))
                .unwrap()
            {
                assert_eq!(why, Dropped::Size);
                dropped += n;
            }
        }
        // Three rows fit; the rest were dropped oldest first, and counted.
        assert_eq!(q.pending() + dropped, 500);
        assert!(q.pending() <= 150, "{}", q.pending());
        let first = q.peek(0, 1).unwrap().requests[0].timeseries[0].samples[0].timestamp;
        assert!(first >= 7000, "{first}");
        // Age: everything taken before now - 60 s goes, counted.
        let before = q.pending();
        assert_eq!(
            q.expire(9000 + 60_000 + 1).unwrap(),
            vec![(Dropped::Age, before)]
        );
        assert_eq!(q.pending(), 0);
        assert!(q.expire(100_000).unwrap().is_empty());
    }
}
