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
use vantage::audit::record::{AuditKey, AuditRecord, KIND_RESTORE_TEST, Verdict, hash, sign};
use vantage::audit::s3::{LockMode, Retention, S3Config, S3Sink, ShipError, StaticCredentials};
use vantage::audit::spool::{Entry, Spool};
use vantage::audit::verify::{Issue, verify_log};

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
        verdict: if n.is_multiple_of(2) {
            Verdict::Fail
        } else {
            Verdict::Pass
        },
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
        let out = Command::new(env!("CARGO_BIN_EXE_vantage"))
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
        assert_eq!(sink.ship_pending(&spool).await.unwrap(), 1);
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

    let report = verify_log(&sink, Some(&key.public_key())).await.unwrap();
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
    other.verdict = Verdict::Pass;
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
    let spool = Spool::open(dir.path().join("spool"), key.clone()).unwrap();
    assert_eq!(spool.pending().unwrap().len(), 1);
    assert_eq!(sink.ship_pending(&spool).await.unwrap(), 1);
    std::fs::write(
        dir.path().join("spool/pending/00000000000000000004.json"),
        r4.canonical_bytes(),
    )
    .unwrap();
    assert_eq!(sink.ship_pending(&spool).await.unwrap(), 1);
    assert!(spool.pending().unwrap().is_empty());

    // The CLI agrees.
    let public_key = write_public_key(dir.path(), &key);
    let (code, stdout, stderr) = cli(cli_args("verify", &moto, "audit-ok", &public_key)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("4 records, seq 1 to 4"), "{stdout}");
    assert!(stdout.contains("OK: chain intact"), "{stdout}");
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
        let err = sink.ship_pending(&spool).await.unwrap_err();
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
    assert_eq!(sink.ship_pending(&spool).await.unwrap(), 3);
    assert!(spool.pending().unwrap().is_empty());
    let r4 = spool.append(entry(4)).unwrap();
    assert_eq!(r4.seq, 4);
    assert_eq!(sink.ship_pending(&spool).await.unwrap(), 1);
    let report = verify_log(&sink, Some(&key.public_key())).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_seq(), Some(4));

    // Down again (server stopped): the next record waits in the spool.
    drop(moto);
    spool.append(entry(5)).unwrap();
    assert!(sink.ship_pending(&spool).await.is_err());
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
    assert_eq!(sink.ship_pending(&spool).await.unwrap(), 5);
    assert!(
        verify_log(&sink, Some(&key.public_key()))
            .await
            .unwrap()
            .is_ok()
    );
    let client = sink.client();

    // Edit: a new version of record 2 with a better verdict.
    let mut edited = records[1].clone();
    edited.verdict = Verdict::Pass;
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

    let report = verify_log(&sink, Some(&key.public_key())).await.unwrap();
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
    assert_eq!(issues.len(), 5, "{report}");

    let public_key = write_public_key(dir.path(), &key);
    let (code, stdout, stderr) = cli(cli_args("verify", &moto, bucket, &public_key)).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    for needle in [
        "FAILED: 5 problems",
        "edit: record 2 has 2 versions with different contents",
        "deletion: record 3 has a delete marker",
        "gap: record 4 is missing",
        "bad signature: record 6",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
}
