//! The SDK carries its own copy of the WIT contract (`sdk/wit/`) so that the
//! package builds outside the repository; the copy must be the contract the
//! host is built from (`wit/`), byte for byte.
//!
//! This file is left out of the published package (see `package.exclude` in
//! `sdk/Cargo.toml`): outside the repository there is no `wit/` to compare
//! with.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const RESYNC: &str = "run scripts/sync-wit.sh (it copies wit/ to sdk/wit/)";

/// Every file under `dir`, by its path relative to `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(relative, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// How `copy` differs from `contract`, one line a file; empty when equal.
fn differences(
    contract: &BTreeMap<PathBuf, Vec<u8>>,
    copy: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in contract {
        match copy.get(path) {
            None => out.push(format!("sdk/wit/{} is missing", path.display())),
            Some(copied) if copied != bytes => {
                out.push(format!("sdk/wit/{} differs from wit/", path.display()))
            }
            Some(_) => {}
        }
    }
    for path in copy.keys().filter(|p| !contract.contains_key(*p)) {
        out.push(format!("sdk/wit/{} is not in wit/", path.display()));
    }
    out
}

#[test]
fn wit_copy_matches_the_contract() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
    let contract = files(&sdk.join("../wit"));
    let copy = files(&sdk.join("wit"));
    assert!(!contract.is_empty(), "wit/ has no files");
    let diff = differences(&contract, &copy);
    assert!(
        diff.is_empty(),
        "sdk/wit/ is not a copy of wit/:\n  {}\n{RESYNC}",
        diff.join("\n  ")
    );
}

/// The comparison itself notices each kind of drift.
#[test]
fn differences_name_each_drifted_file() {
    let map = |entries: &[(&str, &str)]| -> BTreeMap<PathBuf, Vec<u8>> {
        entries
            .iter()
            .map(|(p, b)| (PathBuf::from(p), b.as_bytes().to_vec()))
            .collect()
    };
    let contract = map(&[("a.wit", "x"), ("b.wit", "y"), ("deps/c.wit", "z")]);
    assert!(differences(&contract, &contract.clone()).is_empty());
    let copy = map(&[("a.wit", "x "), ("deps/c.wit", "z"), ("old.wit", "")]);
    assert_eq!(
        differences(&contract, &copy),
        [
            "sdk/wit/a.wit differs from wit/",
            "sdk/wit/b.wit is missing",
            "sdk/wit/old.wit is not in wit/",
        ]
    );
}
