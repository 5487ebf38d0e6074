//! Static sharding: two `vantage daemon --shard i/2` replicas over one
//! configuration run each check exactly once between them, and say how
//! many they own in their metrics.

use crate::daemon::{Daemon, http_check};
use crate::support::start_target;

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_split_the_checks_each_exactly_once() {
    let target = start_target().await;
    let names: Vec<String> = (0..8).map(|i| format!("check-{i}")).collect();
    let body: String = names
        .iter()
        .map(|n| http_check(n, "1m", &format!("{target}/healthz"), ""))
        .collect();
    let mut owned = Vec::new();
    let mut daemons = Vec::new();
    for shard in ["0/2", "vantage-1/2"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let b = body.clone();
        let daemon = tokio::task::spawn_blocking(move || {
            Daemon::start(&path, "", &b, &["--no-watch", "--shard", shard])
        })
        .await
        .unwrap();
        let mine = daemon.check_names();
        let metrics = daemon.metrics();
        assert!(metrics.contains("vantage_shard_members 2"), "{metrics}");
        assert!(
            metrics.contains(&format!("vantage_shard_owned_checks {}", mine.len())),
            "{metrics}"
        );
        owned.push(mine);
        daemons.push((daemon, dir));
    }
    // Each check on exactly one replica, both replicas busy.
    let mut all: Vec<String> = owned.concat();
    all.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(all, expected, "{owned:?}");
    assert!(owned.iter().all(|o| !o.is_empty()), "{owned:?}");
    // A bad shard is refused with the form.
    let out = crate::support::vantage(&["daemon", "--shard", "2/2", "--config", "x.toml"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("write i/n"), "{}", out.stderr);
}
