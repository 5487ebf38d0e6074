//! What makes the daemon reload or stop: SIGHUP and changes of the
//! configuration file (reload), SIGTERM and SIGINT (stop).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tracing::warn;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Reload the configuration; the reason, for the log.
    Reload(String),
    /// Stop; the reason, for the log.
    Stop(String),
}

/// The sources of [`Event`]s.
pub struct Triggers {
    hup: Signal,
    term: Signal,
    int: Signal,
    changes: mpsc::Receiver<()>,
    // Kept alive while the daemon runs; `None` when watching is off.
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Changes closer together than this are one reload (editors write a file
/// in several steps).
const SETTLE: Duration = Duration::from_millis(300);

impl Triggers {
    /// Listen for signals and, if `watch`, for changes of `config`.
    pub fn new(config: &Path, watch: bool) -> anyhow::Result<Self> {
        let (tx, changes) = mpsc::channel(1);
        let watcher = if watch {
            Some(watch_file(config, tx)?)
        } else {
            None
        };
        Ok(Triggers {
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            changes,
            _watcher: watcher,
        })
    }

    /// The next event.
    pub async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.hup.recv() => Event::Reload("SIGHUP".into()),
            Some(()) = self.changes.recv() => {
                // Let the writer finish, then take every change so far as one.
                tokio::time::sleep(SETTLE).await;
                while self.changes.try_recv().is_ok() {}
                Event::Reload("configuration file changed".into())
            }
            _ = self.term.recv() => Event::Stop("SIGTERM".into()),
            _ = self.int.recv() => Event::Stop("SIGINT".into()),
        }
    }
}

/// Watch the file's directory (editors replace files by renaming, which a
/// watch on the file itself would lose) and signal changes of the file.
fn watch_file(config: &Path, tx: mpsc::Sender<()>) -> anyhow::Result<notify::RecommendedWatcher> {
    let file: PathBuf = config
        .canonicalize()
        .with_context(|| format!("cannot watch {}", config.display()))?;
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = file.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                let ours = event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
                let relevant = matches!(
                    event.kind,
                    notify::EventKind::Create(_) | notify::EventKind::Modify(_)
                );
                if ours && relevant {
                    // A full channel already holds a pending reload.
                    let _ = tx.try_send(());
                }
            }
            Err(e) => warn!("watching the configuration file: {e}"),
        }
    })
    .context("cannot start the file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(watcher)
}
