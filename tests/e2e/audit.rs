//! The audit log against a real S3 server with Object Lock: `moto` in server
//! mode (PyPI `moto[server]`, installed by `scripts/test-all.sh`), started
//! as a direct child on a free 127.0.0.1 port and killed by PID on drop.
//!
//! moto enforces what these tests rely on: `If-None-Match: *` (412 on an
//! existing key), Object Lock retention (a COMPLIANCE-locked version cannot
//! be deleted; GOVERNANCE only with the bypass header) and versioning. Where
//! it falls short of S3: it keeps everything in memory (a restarted server
//! is empty, so the outage test starts the server late instead of
//! restarting it), it does not check `aws:kms` keys (SSE is not tested
//! here), and it answers GetObjectRetention on a path-style URL with the
//! object itself (retention is read from HeadObject instead).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockMode, VersioningConfiguration};
use serde_json::json;
use vantage::audit::record::{
    AuditKey, AuditRecord, KIND_RESTORE_TEST, Keyring, Verdict, hash, sign,
};
use vantage::audit::s3::{LockMode, Retention, S3Config, S3Sink, ShipError, StaticCredentials};
use vantage::audit::spool::{Entry, Spool};
use vantage::audit::verify::{Issue, VerifyOptions, verify_log};

use crate::servers::free_port;

pub(crate) const ACCESS_KEY: &str = "vantage-test";
pub(crate) const SECRET_KEY: &str = "vantage-test-secret";

/// A moto server, killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Moto {
    pub(crate) fn start(port: u16) -> Moto {
        let status = Command::new("sh")
            .args(["-c", "command -v moto_server"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "moto_server is missing: run `bash scripts/test-all.sh`, which installs it \
             (or `pip install 'moto[server]'`)"
        );
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn config(endpoint: &str, bucket: &str, retention: Option<Retention>) -> S3Config {
    let mut c = S3Config::new(bucket);
    c.endpoint = Some(endpoint.to_string());
    c.region = Some("us-east-1".into());
    c.path_style = true;
    c.credentials = Some(StaticCredentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        session_token: None,
    });
    c.retention = retention;
    c.max_attempts = 1;
    c
}

/// Create a versioned bucket with Object Lock enabled.
pub(crate) async fn create_locked_bucket(sink: &S3Sink) {
    let bucket = &sink.config().bucket;
    sink.client()
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("creating the bucket");
    sink.client()
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enabling versioning");
}

fn entry(n: u32) -> Entry {
    Entry {
        run_id: format!("run-{n}"),
        location: "e2e".into(),
        kind: KIND_RESTORE_TEST.into(),
        subject: json!({"backup": {"name": format!("daily-{n}")}, "rto_seconds": 40 + n}),
        verdict: Some(if n.is_multiple_of(2) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }),
    }
}

fn write_public_key(dir: &Path, key: &AuditKey) -> String {
    let path = dir.join("audit.pub");
    std::fs::write(&path, format!("{}\n", key.public_key_hex())).unwrap();
    path.display().to_string()
}

/// `vantage audit <args>` with the moto credentials in the environment.
pub(crate) async fn cli(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(crate::support::vantage_bin())
            .arg("audit")
            .args(&args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("RUST_LOG")
            .output()
            .expect("running vantage");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn cli_args(cmd: &str, moto: &Moto, bucket: &str, public_key: &str) -> Vec<String> {
    [
        cmd,
        "--bucket",
        bucket,
        "--endpoint",
        &moto.endpoint,
        "--public-key",
        public_key,
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_ship_with_object_lock_and_the_chain_verifies() {
    let moto = Moto::start(free_port());
    let retention = Retention {
        mode: LockMode::Compliance,
        days: 1,
    };
    let sink = S3Sink::new(config(&moto.endpoint, "audit-ok", Some(retention)))
        .await
        .unwrap();
    create_locked_bucket(&sink).await;
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([11; 32]);
    let mut spool = Spool::open(dir.path().join("spool"), key.clone()).unwrap();

    // Append 3 records, shipping after each: 3 objects, spool empty.
    let mut records = Vec::new();
    for n in 1..=3 {
        records.push(spool.append(entry(n)).unwrap());
        assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 1);
    }
    assert!(spool.pending().unwrap().is_empty());
    let body = sink
        .get("audit/00000000000000000002.json", None)
        .await
        .unwrap();
    assert_eq!(
        body,
        records[1].canonical_bytes(),
        "the object is the canonical record"
    );

    let report = verify_log(&sink, &VerifyOptions::new(Keyring::of([key.public_key()])))
        .await
        .unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, records);
    assert_eq!(report.last_seq(), Some(3));

    // Object Lock retention is on every written version, and COMPLIANCE
    // refuses deleting it.
    let k1 = sink.key(1);
    // (moto answers GetObjectRetention on a path-style URL with the object
    // itself, so read the lock from HeadObject's x-amz-object-lock-* headers.)
    let head = sink
        .client()
        .head_object()
        .bucket("audit-ok")
        .key(&k1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let now = chrono::Utc::now().timestamp();
    assert!(
        until > now + 23 * 3600 && until <= now + 24 * 3600 + 60,
        "{until}"
    );
    let versions = sink.list_versions().await.unwrap();
    let v1 = versions.iter().find(|v| v.key == k1).unwrap();
    let delete = sink
        .client()
        .delete_object()
        .bucket("audit-ok")
        .key(&k1)
        .version_id(&v1.version_id)
        .send()
        .await;
    assert!(delete.is_err(), "a COMPLIANCE-locked version was deleted");

    // A second write of an existing key is refused (412): identical bytes
    // are an idempotent replay, different bytes a conflict.
    let same = sink
        .put_record(2, &records[1].canonical_bytes())
        .await
        .unwrap();
    assert_eq!(same, vantage::audit::s3::PutOutcome::AlreadyPresent);
    let mut other = records[1].clone();
    other.verdict = Some(Verdict::Pass);
    sign(&mut other, &key);
    let err = sink
        .put_record(2, &other.canonical_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, ShipError::Conflict { .. }), "{err}");
    assert_eq!(
        sink.list_versions().await.unwrap().len(),
        3,
        "nothing was overwritten"
    );

    // A crash between the spool write and the ship: the record is still
    // spooled after a restart and the start-up replay ships it. A crash
    // after the put but before the spool removal: the replay finds the same
    // bytes (412) and just removes it.
    let r4 = spool.append(entry(4)).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path().join("spool"), key.clone()).unwrap();
    assert_eq!(spool.pending().unwrap().len(), 1);
    assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 1);
    std::fs::write(
        dir.path().join("spool/pending/00000000000000000004.json"),
        r4.canonical_bytes(),
    )
    .unwrap();
    assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 1);
    assert!(spool.pending().unwrap().is_empty());

    // The CLI agrees.
    let public_key = write_public_key(dir.path(), &key);
    let (code, stdout, stderr) = cli(cli_args("verify", &moto, "audit-ok", &public_key)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("4 records, seq 1 to 4"), "{stdout}");
    assert!(stdout.contains("OK: records 1 to 4 verify"), "{stdout}");
    assert!(!stdout.contains("chain intact"), "{stdout}");
    assert!(stdout.contains("NOT CHECKED"), "{stdout}");
    assert!(stdout.contains(&key.key_id()), "{stdout}");
    let (code, stdout, _) = cli(cli_args("list", &moto, "audit-ok", &public_key)).await;
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(stdout.contains("run-3"), "{stdout}");
    let mut show = cli_args("show", &moto, "audit-ok", &public_key);
    show.insert(1, "3".into());
    let (code, stdout, stderr) = cli(show).await;
    assert_eq!(code, 0, "{stderr}");
    let shown: AuditRecord = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown, records[2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_are_spooled_while_s3_is_down_and_shipped_when_it_answers() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    // Nothing listens on the port yet: S3 is down.
    let sink = S3Sink::new(config(&endpoint, "audit-outage", None))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([12; 32]);
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    for n in 1..=3 {
        let record = spool.append(entry(n)).unwrap();
        assert_eq!(record.seq, u64::from(n));
        let err = sink.ship_pending(&mut spool).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("audit/00000000000000000001.json"),
            "{err:#}"
        );
    }
    assert_eq!(spool.pending().unwrap().len(), 3, "nothing lost");
    drop(spool);

    // S3 comes up; the daemon restarts and replays the spool.
    let moto = Moto::start(port);
    create_locked_bucket(&sink).await;
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 3);
    assert!(spool.pending().unwrap().is_empty());
    let r4 = spool.append(entry(4)).unwrap();
    assert_eq!(r4.seq, 4);
    assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 1);
    let mut options = VerifyOptions::new(Keyring::of([key.public_key()]));
    options.require_retention = false; // no Object Lock in this test
    let report = verify_log(&sink, &options).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_seq(), Some(4));

    // Down again (server stopped): the next record waits in the spool.
    drop(moto);
    spool.append(entry(5)).unwrap();
    assert!(sink.ship_pending(&mut spool).await.is_err());
    assert_eq!(spool.pending().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_edits_deletions_gaps_and_foreign_signatures() {
    let moto = Moto::start(free_port());
    // GOVERNANCE so that the test (the attacker) can bypass the lock to
    // remove a version entirely; COMPLIANCE would refuse (see above).
    let retention = Retention {
        mode: LockMode::Governance,
        days: 1,
    };
    let bucket = "audit-tampered";
    let sink = S3Sink::new(config(&moto.endpoint, bucket, Some(retention)))
        .await
        .unwrap();
    create_locked_bucket(&sink).await;
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([13; 32]);
    let mut spool = Spool::open(dir.path().join("spool"), key.clone()).unwrap();
    let mut records = Vec::new();
    for n in 1..=5 {
        records.push(spool.append(entry(n)).unwrap());
    }
    assert_eq!(sink.ship_pending(&mut spool).await.unwrap(), 5);
    assert!(
        verify_log(&sink, &VerifyOptions::new(Keyring::of([key.public_key()])))
            .await
            .unwrap()
            .is_ok()
    );
    let client = sink.client();

    // Edit: a new version of record 2 with a better verdict.
    let mut edited = records[1].clone();
    edited.verdict = Some(Verdict::Pass);
    client
        .put_object()
        .bucket(bucket)
        .key(sink.key(2))
        .body(ByteStream::from(edited.canonical_bytes()))
        .send()
        .await
        .unwrap();
    // Deletion: a delete marker on record 3.
    client
        .delete_object()
        .bucket(bucket)
        .key(sink.key(3))
        .send()
        .await
        .unwrap();
    // Removal: record 4's only version deleted with the governance bypass.
    let versions = sink.list_versions().await.unwrap();
    let v4 = versions.iter().find(|v| v.key == sink.key(4)).unwrap();
    client
        .delete_object()
        .bucket(bucket)
        .key(sink.key(4))
        .version_id(&v4.version_id)
        .bypass_governance_retention(true)
        .send()
        .await
        .expect("a GOVERNANCE delete with bypass");
    // A record 6 chained correctly but signed with another key.
    let mut forged = records[4].clone();
    forged.seq = 6;
    forged.prev_hash = hash(&records[4]);
    sign(&mut forged, &AuditKey::from_seed([99; 32]));
    sink.put_record(6, &forged.canonical_bytes()).await.unwrap();

    let report = verify_log(&sink, &VerifyOptions::new(Keyring::of([key.public_key()])))
        .await
        .unwrap();
    assert!(!report.is_ok());
    let issues = &report.issues;
    assert!(
        issues.contains(&Issue::Edited {
            seq: 2,
            versions: 2,
            changed: true
        }),
        "{report}"
    );
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::BadSignature { seq: 2, .. })),
        "the edited version's signature no longer matches: {report}"
    );
    assert!(issues.contains(&Issue::Deleted { seq: 3 }), "{report}");
    assert!(issues.contains(&Issue::Gap { from: 4, to: 4 }), "{report}");
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::BadSignature { seq: 6, .. })),
        "{report}"
    );
    assert!(
        !issues.iter().any(|i| matches!(i, Issue::ChainBreak { .. })),
        "the chain uses the original versions: {report}"
    );
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::NoRetention { seq: 2, .. })),
        "the attacker's version carries no retention: {report}"
    );
    assert_eq!(issues.len(), 6, "{report}");

    let public_key = write_public_key(dir.path(), &key);
    let (code, stdout, stderr) = cli(cli_args("verify", &moto, bucket, &public_key)).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    for needle in [
        "FAILED: 6 problems",
        "edit: record 2 has 2 versions with different contents",
        "deletion: record 3 has a delete marker",
        "gap: record 4 is missing",
        "bad signature: record 6",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
}

// ---------------------------------------------------------------------------
// Issue 12 item 5 / issue 13 "The audit log must verify, and must show
// truncation": a daemon-written, float-heavy log verifies; each kind of
// tampering fails naming the problem.

use vantage::audit::log::AuditLog;
use vantage::audit::record::{GENESIS_HASH, KIND_CHECKPOINT};
use vantage::config::{AuditConfig, SecretSource};
use vantage::sinks::audit_metrics::AuditGauges;

/// An `[audit]` section for `AuditLog::open_with`, its key in a 0600 file.
fn audit_config(dir: &Path, key: &AuditKey, spool: &str) -> AuditConfig {
    use std::os::unix::fs::PermissionsExt;
    let key_file = dir.join(format!("{spool}.key"));
    std::fs::write(&key_file, hex::encode(key_seed(key))).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    AuditConfig {
        bucket: String::new(),
        prefix: "audit/".into(),
        endpoint: None,
        region: None,
        path_style: true,
        signing_key: SecretSource::File(key_file),
        retention: None,
        sse: None,
        spool_dir: Some(dir.join(spool)),
        previous_signing_key: None,
        checkpoint_every: Duration::from_secs(3600),
    }
}

/// The seeds the tests use are `[n; 32]`; recover n from the key id.
fn key_seed(key: &AuditKey) -> [u8; 32] {
    (0..=255u8)
        .map(|n| [n; 32])
        .find(|s| AuditKey::from_seed(*s).key_id() == key.key_id())
        .expect("test keys are [n; 32]")
}

/// A float-heavy subject like a restore report's timings.
fn float_entry(n: u32) -> Entry {
    let t = f64::from(n) * 0.1 + 2.2504560000000002 / (f64::from(n) + 1.0);
    Entry {
        run_id: format!("run-{n}"),
        location: "e2e".into(),
        kind: KIND_RESTORE_TEST.into(),
        subject: json!({
            "timings": {"setup_seconds": t, "restore_seconds": t * 7.77,
                        "ready_seconds": 1.0 / 3.0, "total_seconds": t + t * 7.77 + 1.0 / 3.0},
            "rto_target_seconds": 600.0,
            "reason": "checks \"api\" passed\n\u{1f600}",
        }),
        verdict: Some(Verdict::Pass),
    }
}

/// Poll until the log's spool is empty (everything shipped).
async fn wait_shipped(log: &AuditLog) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = log.status();
        if status.pending == 0 && status.shipped > 0 && status.last_error.is_none() {
            return;
        }
        assert!(Instant::now() < deadline, "not shipped: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn locked_sink(moto: &Moto, bucket: &str, mode: LockMode) -> S3Sink {
    let sink = S3Sink::new(config(
        &moto.endpoint,
        bucket,
        Some(Retention { mode, days: 1 }),
    ))
    .await
    .unwrap();
    create_locked_bucket(&sink).await;
    sink
}

/// Write `n` float-heavy verdicts through the daemon's audit log (spool,
/// shipper, checkpoints) and stop it: startup checkpoint (none on an empty
/// chain), verdicts, shutdown checkpoint.
async fn daemon_writes(sink: &S3Sink, dir: &Path, key: &AuditKey, spool: &str, n: u32) {
    let config = audit_config(dir, key, spool);
    let log = AuditLog::open_with(&config, sink.clone(), dir, "e2e", AuditGauges::default())
        .await
        .unwrap();
    for i in 1..=n {
        log.append(float_entry(i)).unwrap();
    }
    wait_shipped(&log).await;
    log.shutdown(Duration::from_secs(10)).await;
}

fn verify_args(moto: &Moto, bucket: &str, public_key: &str, extra: &[&str]) -> Vec<String> {
    let mut args = cli_args("verify", moto, bucket, public_key);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_on_a_daemon_written_log_and_fails_naming_each_problem() {
    let moto = Moto::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([21; 32]);
    let public_key = write_public_key(dir.path(), &key);

    // 1. Untouched, float-heavy, written by the daemon's audit log: passes,
    //    also with --max-age (the shutdown checkpoint is fresh).
    let ok = locked_sink(&moto, "floats", LockMode::Compliance).await;
    daemon_writes(&ok, dir.path(), &key, "spool-floats", 4).await;
    let (code, out, err) = cli(verify_args(&moto, "floats", &public_key, &[])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("5 records, seq 1 to 5"), "{out}");
    assert!(out.contains("newest checkpoint: record 5 at"), "{out}");
    assert!(
        out.contains("NOT CHECKED: whether records newer than record 5"),
        "{out}"
    );
    assert!(!out.contains("chain intact"), "{out}");
    let (code, out, err) = cli(verify_args(
        &moto,
        "floats",
        &public_key,
        &["--max-age", "1h"],
    ))
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("within --max-age 1h"), "{out}");
    let last: serde_json::Value =
        serde_json::from_slice(&ok.get(&ok.key(5), None).await.unwrap()).unwrap();
    assert_eq!(last["kind"], KIND_CHECKPOINT);
    assert_eq!(last["subject"]["reason"], "shutdown");
    assert_eq!(last["subject"]["head_seq"], 4);

    // 2. An edited record (a new version with a better verdict).
    let edited = locked_sink(&moto, "edited", LockMode::Compliance).await;
    daemon_writes(&edited, dir.path(), &key, "spool-edited", 3).await;
    let mut record: serde_json::Value =
        serde_json::from_slice(&edited.get(&edited.key(2), None).await.unwrap()).unwrap();
    record["verdict"] = json!("pass");
    record["subject"]["timings"]["total_seconds"] = json!(1.0);
    edited
        .client()
        .put_object()
        .bucket("edited")
        .key(edited.key(2))
        .body(ByteStream::from(serde_json::to_vec(&record).unwrap()))
        .send()
        .await
        .unwrap();
    let (code, out, _) = cli(verify_args(&moto, "edited", &public_key, &[])).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("edit: record 2 has 2 versions with different contents"),
        "{out}"
    );

    // 3. A deleted middle record (GOVERNANCE, removed with the bypass).
    let middle = locked_sink(&moto, "middle", LockMode::Governance).await;
    daemon_writes(&middle, dir.path(), &key, "spool-middle", 3).await;
    remove_version(&middle, 2).await;
    let (code, out, _) = cli(verify_args(&moto, "middle", &public_key, &[])).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("gap: record 2 is missing"), "{out}");

    // 4. An empty log (or one deleted entirely).
    let empty = locked_sink(&moto, "empty", LockMode::Governance).await;
    let (code, out, _) = cli(verify_args(&moto, "empty", &public_key, &[])).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("empty: there is no audit record"), "{out}");
    drop(empty);

    // 5. A record signed by a key not in the keyring, chained correctly.
    let foreign = locked_sink(&moto, "foreign", LockMode::Compliance).await;
    daemon_writes(&foreign, dir.path(), &key, "spool-foreign", 2).await;
    let head =
        AuditRecord::from_canonical_bytes(&foreign.get(&foreign.key(3), None).await.unwrap())
            .unwrap();
    let stranger = AuditKey::from_seed([66; 32]);
    let mut forged = head.clone();
    forged.seq = 4;
    forged.prev_hash = hash(&head);
    forged.kind = KIND_RESTORE_TEST.into();
    sign(&mut forged, &stranger);
    foreign
        .put_record(4, &forged.canonical_bytes())
        .await
        .unwrap();
    let (code, out, _) = cli(verify_args(&moto, "foreign", &public_key, &[])).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("bad signature: record 4")
            && out.contains(&format!(
                "signed by key {}, which is not in the keyring",
                stranger.key_id()
            )),
        "{out}"
    );
}

/// Remove every version of record `seq` (GOVERNANCE bypass): the attacker
/// the chain alone cannot see when it is the newest.
async fn remove_version(sink: &S3Sink, seq: u64) {
    let key = sink.key(seq);
    for v in sink
        .list_versions()
        .await
        .unwrap()
        .iter()
        .filter(|v| v.key == key)
    {
        sink.client()
            .delete_object()
            .bucket(&sink.config().bucket)
            .key(&key)
            .version_id(&v.version_id)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect("a GOVERNANCE delete with bypass");
    }
}

/// Signed, chained records with chosen kinds and times, as a daemon would
/// have written them in the past.
fn past_chain(key: &AuditKey, items: &[(&str, chrono::DateTime<chrono::Utc>)]) -> Vec<AuditRecord> {
    let mut prev = GENESIS_HASH.to_string();
    let mut out = Vec::new();
    for (i, (kind, at)) in items.iter().enumerate() {
        let mut r = AuditRecord {
            seq: i as u64 + 1,
            prev_hash: prev.clone(),
            run_id: format!("r{i}"),
            location: "e2e".into(),
            kind: kind.to_string(),
            subject: json!({"head_seq": i, "every_seconds": 3600}),
            verdict: (*kind == KIND_RESTORE_TEST).then_some(Verdict::Pass),
            vantage_version: "0".into(),
            recorded_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key_id: String::new(),
            signature: String::new(),
        };
        sign(&mut r, key);
        prev = hash(&r);
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_tail_is_reported_by_max_age_and_never_called_intact() {
    let moto = Moto::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([22; 32]);
    let public_key = write_public_key(dir.path(), &key);
    let sink = locked_sink(&moto, "tail", LockMode::Governance).await;
    let now = chrono::Utc::now();
    let records = past_chain(
        &key,
        &[
            (KIND_RESTORE_TEST, now - chrono::Duration::hours(3)),
            (KIND_CHECKPOINT, now - chrono::Duration::hours(2)),
            (KIND_RESTORE_TEST, now - chrono::Duration::minutes(30)),
            (KIND_CHECKPOINT, now - chrono::Duration::minutes(5)),
        ],
    );
    for r in &records {
        sink.put_record(r.seq, &r.canonical_bytes()).await.unwrap();
    }
    let (code, out, _) = cli(verify_args(
        &moto,
        "tail",
        &public_key,
        &["--max-age", "1h"],
    ))
    .await;
    assert_eq!(code, 0, "{out}");

    // The attacker removes the newest two records (a verdict and the
    // checkpoint after it): the chain that is left is consistent.
    remove_version(&sink, 4).await;
    remove_version(&sink, 3).await;
    let (code, out, _) = cli(verify_args(&moto, "tail", &public_key, &[])).await;
    assert_eq!(
        code, 0,
        "without --max-age the chain that is left verifies: {out}"
    );
    assert!(!out.contains("chain intact"), "{out}");
    assert!(
        out.contains("NOT CHECKED: whether records newer than record 2 were removed"),
        "it says what it cannot know: {out}"
    );
    assert!(out.contains("newest checkpoint: record 2 at"), "{out}");
    let (code, out, _) = cli(verify_args(
        &moto,
        "tail",
        &public_key,
        &["--max-age", "1h"],
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("stale: the newest checkpoint (record 2"),
        "{out}"
    );
    assert!(out.contains("more than --max-age 1h"), "{out}");
    let mut json_args = verify_args(&moto, "tail", &public_key, &["--max-age", "1h"]);
    json_args.push("--json".into());
    let (code, out, _) = cli(json_args).await;
    assert_eq!(code, 2);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["newest_checkpoint"]["seq"], 2);
    assert_eq!(report["truncation_checked"], true);

    // A log without any checkpoint cannot prove its age.
    let bare = locked_sink(&moto, "bare", LockMode::Governance).await;
    let records = past_chain(&key, &[(KIND_RESTORE_TEST, now)]);
    bare.put_record(1, &records[0].canonical_bytes())
        .await
        .unwrap();
    let (code, out, _) = cli(verify_args(
        &moto,
        "bare",
        &public_key,
        &["--max-age", "1h"],
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no checkpoint"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_spool_continues_the_chain_and_a_second_writer_stalls_visibly() {
    let moto = Moto::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([23; 32]);
    let public_key = write_public_key(dir.path(), &key);
    let sink = locked_sink(&moto, "recover", LockMode::Compliance).await;
    daemon_writes(&sink, dir.path(), &key, "spool-a", 2).await; // records 1..3

    // The spool is lost: a new one takes the head from S3 (no second chain
    // from record 1, which would fail with 412 on every put).
    std::fs::remove_dir_all(dir.path().join("spool-a")).unwrap();
    let gauges = AuditGauges::default();
    let config = audit_config(dir.path(), &key, "spool-a");
    let a = AuditLog::open_with(&config, sink.clone(), dir.path(), "e2e", gauges.clone())
        .await
        .unwrap();
    let r = a.append(float_entry(9)).unwrap();
    assert_eq!(r.seq, 5, "startup checkpoint 4, then this verdict");
    wait_shipped(&a).await;
    assert_eq!(gauges.last_shipped_seq.get(), 5);
    assert_eq!(gauges.spool_records.get(), 0);
    assert!(gauges.last_shipped_timestamp.get() > 1.0e9);

    // A second writer on the same bucket and prefix: it recovers the same
    // head, then its record 6 collides with the first writer's. Its shipper
    // stalls and says so (status, metrics); nothing is overwritten.
    let b_gauges = AuditGauges::default();
    let b_config = audit_config(dir.path(), &key, "spool-b");
    let b = AuditLog::open_with(
        &b_config,
        sink.clone(),
        dir.path(),
        "other",
        b_gauges.clone(),
    )
    .await
    .unwrap();
    wait_shipped(&b).await; // its startup checkpoint, record 6
    a.append(float_entry(10)).unwrap(); // record 6 in a's spool: conflict
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = a.status();
        if s.last_error.is_some() {
            break s;
        }
        assert!(Instant::now() < deadline, "no stall reported: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("already exists with different contents"),
        "{status:?}"
    );
    assert_eq!(status.pending, 1);
    assert_eq!(gauges.spool_records.get(), 1);
    assert!(gauges.ship_failures.get() >= 1);
    assert_eq!(gauges.last_shipped_seq.get(), 5, "nothing shipped since");
    a.shutdown(Duration::from_millis(500)).await;
    b.shutdown(Duration::from_secs(10)).await;

    // The log in S3 is still one valid chain.
    let (code, out, err) = cli(verify_args(
        &moto,
        "recover",
        &public_key,
        &["--max-age", "1h"],
    ))
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_edited_in_the_spool_is_not_shipped() {
    let moto = Moto::start(free_port());
    let sink = locked_sink(&moto, "spool-edit", LockMode::Compliance).await;
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([24; 32]);
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    spool.append(float_entry(1)).unwrap();
    sink.ship_pending(&mut spool).await.unwrap();
    let r2 = spool.append(float_entry(2)).unwrap();
    // Edited on disk: verdict flipped, still canonical JSON.
    let mut edited = r2.clone();
    edited.verdict = Some(Verdict::Fail);
    std::fs::write(
        dir.path().join("pending/00000000000000000002.json"),
        edited.canonical_bytes(),
    )
    .unwrap();
    let err = format!("{:#}", sink.ship_pending(&mut spool).await.unwrap_err());
    assert!(err.contains("spooled audit record 2"), "{err}");
    assert!(err.contains("refusing to ship it"), "{err}");
    assert!(
        sink.get(&sink.key(2), None).await.is_err(),
        "record 2 reached S3"
    );
    assert_eq!(spool.pending().unwrap().len(), 1, "kept for inspection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_verifies_with_a_keyring() {
    let moto = Moto::start(free_port());
    let sink = locked_sink(&moto, "rotated", LockMode::Compliance).await;
    let dir = tempfile::tempdir().unwrap();
    let old = AuditKey::from_seed([25; 32]);
    let new = AuditKey::from_seed([26; 32]);
    daemon_writes(&sink, dir.path(), &old, "spool", 1).await; // 1, 2
    // Restart with the new key and the old one as previous_signing_key.
    let mut config = audit_config(dir.path(), &new, "spool");
    let previous = audit_config(dir.path(), &old, "unused").signing_key;
    config.previous_signing_key = Some(previous);
    let log = AuditLog::open_with(
        &config,
        sink.clone(),
        dir.path(),
        "e2e",
        AuditGauges::default(),
    )
    .await
    .unwrap();
    log.append(float_entry(2)).unwrap();
    wait_shipped(&log).await;
    log.shutdown(Duration::from_secs(10)).await; // 3 rotation, 4 startup, 5 verdict, 6 shutdown

    let rotation: serde_json::Value =
        serde_json::from_slice(&sink.get(&sink.key(3), None).await.unwrap()).unwrap();
    assert_eq!(rotation["kind"], "key-rotation");
    assert_eq!(rotation["key_id"], old.key_id());
    assert_eq!(rotation["subject"]["new_key_id"], new.key_id());

    // The old public key alone verifies (the rotation it signed introduces
    // the new key), and so does a keyring of both.
    let old_pub = write_public_key(dir.path(), &old);
    let (code, out, err) = cli(verify_args(&moto, "rotated", &old_pub, &[])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&new.key_id()), "{out}");
    let both = dir.path().join("keyring.pub");
    std::fs::write(
        &both,
        format!(
            "# old\n{}\n# new\n{}\n",
            old.public_key_hex(),
            new.public_key_hex()
        ),
    )
    .unwrap();
    let (code, out, _) = cli(verify_args(
        &moto,
        "rotated",
        &both.display().to_string(),
        &[],
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    // Only the new key: records 1 to 3 are signed by an unknown key.
    let new_only = dir.path().join("new.pub");
    std::fs::write(&new_only, new.public_key_hex()).unwrap();
    let (code, out, _) = cli(verify_args(
        &moto,
        "rotated",
        &new_only.display().to_string(),
        &[],
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad signature: record 1"), "{out}");
}
