//! The WASI 0.2 basics a guest's standard library needs, and nothing more:
//! stdout/stderr (captured, bounded), clocks and random. No preopened
//! directories, no environment, no arguments, no sockets: the network is
//! reached only through Vantage's own interfaces, under the outbound policy.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// Bytes of stdout/stderr kept per run: the first half and the last half
/// of what was written (the middle is dropped, and said so: a check's first
/// lines and the lines just before it failed are the ones that explain it).
/// Writes never fail (a full pipe must not make `println!` panic in the
/// guest).
pub const CAPTURE_BYTES: usize = 64 * 1024;

/// A bounded in-memory capture of a guest output stream.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Captured>>);

/// What a [`Capture`] holds.
#[derive(Default)]
struct Captured {
    /// The first `CAPTURE_BYTES / 2` bytes.
    head: Vec<u8>,
    /// The last bytes after the head, at most `CAPTURE_BYTES / 2`.
    tail: std::collections::VecDeque<u8>,
    /// Bytes written between the head and the tail, dropped.
    dropped: u64,
}

impl Capture {
    /// What was captured, lossily decoded; a dropped middle is a line
    /// saying how many bytes it had.
    pub fn text(&self) -> String {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = c.head.clone();
        if c.dropped > 0 {
            bytes.extend_from_slice(format!("\n[… {} bytes dropped …]\n", c.dropped).as_bytes());
        }
        bytes.extend(c.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The final `max_lines` non-empty lines of `text`.
pub fn last_lines(text: &str, max_lines: usize) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(max_lines)
        .collect();
    lines.reverse();
    lines
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let half = CAPTURE_BYTES / 2;
        let room = half.saturating_sub(c.head.len());
        let (head, rest) = buf.split_at(buf.len().min(room));
        c.head.extend_from_slice(head);
        // Only the last `half` bytes of `rest` can stay in the tail.
        let skip = rest.len().saturating_sub(half);
        c.dropped += skip as u64;
        c.tail.extend(&rest[skip..]);
        let over = c.tail.len().saturating_sub(half);
        c.tail.drain(..over);
        c.dropped += over as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A WASI context for one run, with stdout and stderr going to the given
/// captures. A replayed run (`replay_start_unix_ms`) sees the recorded
/// run's wall-clock time and a fixed random sequence, so that what a guest's
/// standard library computes from them is what it computed when recorded.
pub fn context(stdout: &Capture, stderr: &Capture, replay_start_unix_ms: Option<u64>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false);
    if let Some(start) = replay_start_unix_ms {
        builder
            .wall_clock(ReplayWallClock {
                start: Duration::from_millis(start),
                origin: Instant::now(),
            })
            .secure_random(wasmtime_wasi::Deterministic::new((0..=255).collect()))
            .insecure_random(wasmtime_wasi::Deterministic::new((0..=255).rev().collect()))
            .insecure_random_seed(0);
    }
    builder.build()
}

/// The wall clock of a replayed run: the recorded start, advancing as the
/// replay does.
struct ReplayWallClock {
    start: Duration,
    origin: Instant,
}

impl wasmtime_wasi::HostWallClock for ReplayWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.start + self.origin.elapsed()
    }
}
