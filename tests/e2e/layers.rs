//! The host's modules (crates `vantage-core`, `vantage-runtime`,
//! `vantage-sinks` and `vantage`) form layers and data flows one way (see
//! ARCHITECTURE.md): a module imports only modules of lower layers. This
//! test reads the sources and fails on an upward or circular `crate::`
//! import, naming the file and the line.

use std::path::{Path, PathBuf};

/// The host's top-level modules, bottom first. A module may import any
/// module of a lower layer (never one of its own layer or above).
const LAYERS: &[&[&str]] = &[
    // Plain data and helpers every layer uses: results and reports,
    // the allow-list policy, the WIT bindings, time and formatting.
    &["units", "pace"],
    &["bindings", "policy", "result", "schema"],
    // The configuration: parsed and validated into plain data.
    &["config"],
    // Capabilities: the host side of the WIT world, per run.
    &["capabilities"],
    // The sandbox that runs checks.
    &["runtime"],
    // Where components come from: files and OCI registries (the
    // `vantage-registry` crate).
    &["components"],
    // Where results go: board, metrics, history, alerts, web.
    &["sinks"],
    // The restore side (feature `restore`): the audit log, then the
    // restore engine that writes to it.
    &["audit"],
    &["restore"],
    // Kubernetes-native Vantage (feature `kubernetes`): the custom
    // resources, their watchers and status, Leases.
    &["kubernetes"],
    // The daemon wires config → schedule → run → sinks.
    &["daemon"],
    // The command line.
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `rel` (relative to `src/`) is test code, which may reach anywhere.
fn is_test_file(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == "tests")
        || rel
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("tests"))
}

#[test]
fn host_modules_import_only_lower_layers() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The bottom layers live in the `vantage-core` crate (`core/`), the
    // sandbox in `vantage-runtime` (`runtime/`), the sinks in
    // `vantage-sinks` (`sinks/`), the rest in `vantage` (`host/`): one layer
    // order across the four.
    let mut files = Vec::new();
    for src in [
        host.join("src"),
        host.join("../core/src"),
        host.join("../runtime/src"),
        host.join("../sinks/src"),
    ] {
        let mut found = Vec::new();
        rust_files(&src, &mut found);
        files.extend(found.into_iter().map(|f| (src.clone(), f)));
    }
    let mut upward = Vec::new();
    for (src, file) in files {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main") || is_test_file(&rel) {
            continue;
        }
        let own = layer_of(&module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break; // the rest of the file is its unit tests
            }
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name == module {
                    continue;
                }
                let Some(theirs) = layer_of(&name) else {
                    continue;
                };
                if theirs >= own {
                    upward.push(format!(
                        "src/{}:{}: {module} imports crate::{name}",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up or sideways:\n{}",
        upward.join("\n")
    );
}
