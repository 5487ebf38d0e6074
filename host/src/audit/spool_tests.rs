//! The spool's pre-ship check, key rotation and key file permissions.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::record::{
    AuditKey, KIND_KEY_ROTATION, KIND_RESTORE_TEST, Keyring, SignatureError, Verdict, hash,
    hash_bytes, rotation_new_key, sign,
};
use super::spool::{Entry, Spool};
use crate::config::SecretSource;

fn entry(n: u32) -> Entry {
    Entry {
        run_id: format!("run-{n}"),
        location: "test".into(),
        kind: KIND_RESTORE_TEST.into(),
        subject: json!({"n": n, "rto_seconds": 1.25}),
        verdict: Some(Verdict::Fail),
    }
}

#[test]
fn a_record_edited_in_the_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([1; 32]);
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    let r1 = spool.append(entry(1)).unwrap();
    let r2 = spool.append(entry(2)).unwrap();
    let bytes = spool.read_bytes(2).unwrap();
    spool.check(2, &bytes, Some(&hash(&r1))).unwrap();

    // Edited on disk, left canonical: the signature no longer matches.
    let mut edited = r2.clone();
    edited.verdict = Some(Verdict::Pass);
    let err = spool
        .check(2, &edited.canonical_bytes(), Some(&hash(&r1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("spooled audit record 2"), "{err}");
    assert!(err.contains("refusing to ship it"), "{err}");
    assert!(err.contains("signature does not match"), "{err}");

    // Edited and re-signed with another key: unknown key.
    sign(&mut edited, &AuditKey::from_seed([2; 32]));
    let err = spool
        .check(2, &edited.canonical_bytes(), Some(&hash(&r1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in the keyring"), "{err}");

    // Pretty-printed (not canonical), or another seq.
    let pretty = serde_json::to_vec_pretty(&r2).unwrap();
    assert!(spool.check(2, &pretty, None).is_err());
    assert!(
        spool
            .check(3, &bytes, None)
            .unwrap_err()
            .to_string()
            .contains("says seq 2")
    );

    // A chain link that does not match the record before.
    let err = spool
        .check(2, &bytes, Some(&"ab".repeat(32)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("prev_hash"), "{err}");
    // The spool knows record 1's hash while it is spooled, and after it is
    // shipped.
    assert_eq!(spool.known_prev_hash(2), Some(hash(&r1)));
    spool.mark_shipped(1, &hash(&r1)).unwrap();
    assert_eq!(spool.known_prev_hash(2), Some(hash(&r1)));
    assert_eq!(spool.state().shipped_seq, 1);
}

#[test]
fn a_spooled_record_that_does_not_verify_stops_the_crash_repair() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([1; 32]);
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    spool.append(entry(1)).unwrap();
    drop(spool);
    // A record 2 written by someone else, newer than state.json.
    let mut forged = Spool::open(
        tempfile::tempdir().unwrap().path(),
        AuditKey::from_seed([7; 32]),
    )
    .unwrap()
    .append(entry(1))
    .unwrap();
    forged.seq = 2;
    sign(&mut forged, &AuditKey::from_seed([7; 32]));
    std::fs::write(
        dir.path().join("pending/00000000000000000002.json"),
        forged.canonical_bytes(),
    )
    .unwrap();
    let err = format!("{:#}", Spool::open(dir.path(), key).unwrap_err());
    assert!(
        err.contains("spooled audit record 2 does not verify"),
        "{err}"
    );
}

#[test]
fn rotation_records_are_signed_by_the_old_key_and_name_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = AuditKey::from_seed([1; 32]);
    let new = AuditKey::from_seed([2; 32]);
    let mut spool = Spool::open(dir.path(), old.clone()).unwrap();
    spool.append(entry(1)).unwrap();
    drop(spool);

    // The new key alone: refused, naming both keys and the fix.
    let mut spool = Spool::open(dir.path(), new.clone()).unwrap();
    let err = spool.rotate_if_needed("here").unwrap_err().to_string();
    assert!(
        err.contains(&old.key_id()) && err.contains(&new.key_id()),
        "{err}"
    );
    assert!(err.contains("previous_signing_key"), "{err}");
    drop(spool);

    let mut spool = Spool::open_with(dir.path(), new.clone(), Some(old.clone())).unwrap();
    let rotation = spool.rotate_if_needed("here").unwrap().expect("a rotation");
    assert_eq!(rotation.kind, KIND_KEY_ROTATION);
    assert_eq!(rotation.key_id, old.key_id());
    assert_eq!(rotation.verdict, None);
    assert_eq!(rotation_new_key(&rotation).unwrap(), new.public_key());
    let r3 = spool.append(entry(3)).unwrap();
    assert_eq!(r3.key_id, new.key_id());
    assert_eq!(r3.prev_hash, hash(&rotation));
    // Nothing more to rotate, also after a restart.
    assert!(spool.rotate_if_needed("here").unwrap().is_none());
    drop(spool);
    let mut spool = Spool::open_with(dir.path(), new.clone(), Some(old.clone())).unwrap();
    assert!(spool.rotate_if_needed("here").unwrap().is_none());

    // A keyring holding only the old key does not know the new one.
    assert!(matches!(
        Keyring::of([old.public_key()]).verify(&r3),
        Err(SignatureError::UnknownKey { .. })
    ));
    // The pre-ship check accepts both keys' records.
    let b2 = spool.read_bytes(2).unwrap();
    spool.check(2, &b2, None).unwrap();
    spool
        .check(3, &spool.read_bytes(3).unwrap(), Some(&hash_bytes(&b2)))
        .unwrap();
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let seed = hex::encode([4u8; 32]);
    std::fs::write(&path, &seed).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o440] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = format!(
            "{:#}",
            AuditKey::from_secret(&SecretSource::File(path.clone())).unwrap_err()
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(&format!("{mode:04o}")), "{err}");
        assert!(err.contains("defaultMode: 0400"), "{err}");
        assert!(!err.contains(&seed[..8]), "{err}");
    }
    for mode in [0o400, 0o600] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        AuditKey::from_secret(&SecretSource::File(path.clone())).unwrap();
    }
    // A Kubernetes Secret volume: the file is a link into ..data/; the
    // target's mode counts.
    let data = dir.path().join("..data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("key"), &seed).unwrap();
    std::fs::set_permissions(data.join("key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(data.join("key"), dir.path().join("key")).unwrap();
    let link = SecretSource::File(dir.path().join("key"));
    assert!(AuditKey::from_secret(&link).is_err());
    std::fs::set_permissions(data.join("key"), std::fs::Permissions::from_mode(0o400)).unwrap();
    AuditKey::from_secret(&link).unwrap();
}
