//! RFC 8785 canonical JSON and the property the audit log depends on: any
//! record the daemon can write reads back as the same bytes and verifies.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::record::{
    AuditKey, AuditRecord, GENESIS_HASH, KIND_RESTORE_TEST, Keyring, Verdict, canonical_json,
    es_double, hash, hash_bytes, sign, verify,
};
use super::spool::{Entry, Spool};

/// RFC 8785 appendix B: IEEE 754 doubles and their ECMAScript text.
#[test]
fn numbers_are_written_as_ecmascript_writes_them() {
    let vectors: [(u64, &str); 24] = [
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, text) in vectors {
        assert_eq!(es_double(f64::from_bits(bits)), text, "{bits:#018x}");
    }
    assert_eq!(es_double(1.5), "1.5");
    assert_eq!(es_double(0.002), "0.002");
    assert_eq!(es_double(1e-7), "1e-7");
    assert_eq!(es_double(123.0), "123");
}

/// RFC 8785 3.2.3: keys sort by UTF-16 code units (U+1F600 before U+FB33,
/// unlike a UTF-8 byte order); integers and integral floats print alike.
#[test]
fn keys_sort_by_utf16_and_values_print_as_jcs() {
    let value = json!({
        "\u{20ac}": "Euro Sign",
        "\r": "Carriage Return",
        "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\u{1f600}": "Emoji: Grinning Face",
        "\u{80}": "Control",
        "\u{f6}": "Latin Small Letter O With Diaeresis"
    });
    let text = String::from_utf8(canonical_json(&value)).unwrap();
    let order: Vec<usize> = [
        "Carriage", "One", "Control", "Latin", "Euro", "Emoji", "Hebrew",
    ]
    .iter()
    .map(|needle| text.find(needle).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(
        canonical_json(&json!({"b": [1.0, -0.0, 2.5e-7, 1e21], "a": "\u{1}\"\\/\u{7f}é"})),
        "{\"a\":\"\\u0001\\\"\\\\/\u{7f}é\",\"b\":[1,0,2.5e-7,1e+21]}".as_bytes()
    );
    // u64 beyond 2^53 is written as the double it denotes, as JCS requires.
    assert_eq!(canonical_json(&json!(u64::MAX)), b"18446744073709552000");
}

/// The value from the bug report: a timing serde_json's default parser
/// reads back one unit in the last place off.
#[test]
fn the_reported_float_round_trips() {
    let key = AuditKey::from_seed([5; 32]);
    let record = record_with(
        &key,
        json!({"timings": {"total_seconds": 2.2504560000000002}}),
    );
    let bytes = record.canonical_bytes();
    let back = AuditRecord::from_canonical_bytes(&bytes).expect("canonical");
    verify(&back, &key.public_key()).unwrap();
    assert_eq!(hash(&back), hash_bytes(&bytes));
}

fn record_with(key: &AuditKey, subject: Value) -> AuditRecord {
    let mut r = AuditRecord {
        seq: 1,
        prev_hash: GENESIS_HASH.into(),
        run_id: "run".into(),
        location: "here".into(),
        kind: KIND_RESTORE_TEST.into(),
        subject,
        verdict: Some(Verdict::Pass),
        vantage_version: "0".into(),
        recorded_at: "2026-01-01T00:00:00.000Z".into(),
        key_id: String::new(),
        signature: String::new(),
    };
    sign(&mut r, key);
    r
}

/// Any finite double: random bit patterns (subnormals, huge, tiny), sums
/// of timings as the daemon computes them, and integral values.
fn any_double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |f| f.is_finite()),
        (1u64..(1 << 52)).prop_map(f64::from_bits), // subnormals
        (0u64..10_000_000_000, 0u64..10_000_000_000)
            .prop_map(|(a, b)| a as f64 / 1e9 + b as f64 / 1e6),
        any::<i64>().prop_map(|i| i as f64),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(f64::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any_double().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}\u{fffd}\u{1f600}a-z]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any record the daemon can write (any subject, any strings) reads
    /// back from its stored bytes as canonical, with the same hash, and its
    /// signature verifies.
    #[test]
    fn any_record_the_daemon_writes_verifies(
        subject in any_json(),
        run_id in any::<String>(),
        location in any::<String>(),
    ) {
        let key = AuditKey::from_seed([9; 32]);
        let mut record = record_with(&key, subject);
        record.run_id = run_id;
        record.location = location;
        sign(&mut record, &key);
        let bytes = record.canonical_bytes();
        let back = AuditRecord::from_canonical_bytes(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{e:#}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(back.canonical_bytes(), bytes.clone());
        prop_assert_eq!(hash(&back), hash_bytes(&bytes));
        prop_assert!(verify(&back, &key.public_key()).is_ok());
    }

    /// Doubles alone, many more of them: the canonical text is a fixed point
    /// of parse-then-write.
    #[test]
    fn canonical_numbers_are_fixed_points(f in any_double()) {
        let bytes = canonical_json(&json!(f));
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(canonical_json(&back), bytes);
    }
}

/// The daemon's own path: float-heavy subjects appended to the spool read
/// back, verify and pass the pre-ship check.
#[test]
fn spooled_float_heavy_records_pass_the_pre_ship_check() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::from_seed([6; 32]);
    let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
    let mut prev = GENESIS_HASH.to_string();
    for n in 0..40u64 {
        let t = n as f64 * 0.1 + 2.2504560000000002 / (n as f64 + 1.0);
        let record = spool
            .append(Entry {
                run_id: format!("run-{n}"),
                location: "e2e".into(),
                kind: KIND_RESTORE_TEST.into(),
                subject: json!({"timings": {"setup_seconds": t, "restore_seconds": t * 3.3,
                    "total_seconds": t + t * 3.3}, "tiny": f64::MIN_POSITIVE / 3.0}),
                verdict: Some(Verdict::Pass),
            })
            .unwrap();
        let bytes = spool.read_bytes(record.seq).unwrap();
        let checked = spool.check(record.seq, &bytes, Some(&prev)).unwrap();
        assert_eq!(checked, spool.read(record.seq).unwrap());
        Keyring::of([key.public_key()]).verify(&checked).unwrap();
        prev = hash_bytes(&bytes);
    }
    // And the spool reopens (the crash-repair path parses the newest record).
    drop(spool);
    Spool::open(dir.path(), key).unwrap();
}
