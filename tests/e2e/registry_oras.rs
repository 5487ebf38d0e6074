//! Interoperability with an independent OCI client, the `oras` Python SDK
//! (PyPI `oras`): it pushes a component in the CNCF Wasm layout and in the
//! older `application/vnd.wasm.content.layer.v1+wasm` layout, and Vantage
//! pulls and runs both; Vantage pushes, and `oras` pulls identical bytes.

use std::process::Command;

use crate::registry::{LocalRegistry, assert_runs_and_passes, push};
use crate::support::wasm;

/// Run `script` with Python, `oras` imported and `host` set; its stdout.
fn oras(host: &str, dir: &std::path::Path, script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import oras.provider\nhost = {host:?}\n\
             reg = oras.provider.Registry(hostname=host, insecure=True)\n{script}"
        ))
        .current_dir(dir)
        .output()
        .expect("running python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'oras'"),
        "the oras Python SDK is missing: run `bash scripts/test-all.sh`, which installs it \
         (pip install oras)"
    );
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn oras_pushes_both_wasm_layouts_that_vantage_runs_and_pulls_what_vantage_pushes() {
    let registry = LocalRegistry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let healthz = std::fs::read(wasm("healthz")).unwrap();
    std::fs::write(dir.path().join("healthz.wasm"), &healthz).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architecture":"wasm","os":"wasip2"}"#,
    )
    .unwrap();
    let pushed = oras(
        &host,
        dir.path(),
        "for target, files, config in [\n\
         (f'{host}/oras/cncf:1', ['healthz.wasm:application/wasm'], \
         'config.json:application/vnd.wasm.config.v0+json'),\n\
         (f'{host}/oras/old:1', ['healthz.wasm:application/vnd.wasm.content.layer.v1+wasm'], None)]:\n\
         \x20   r = reg.push(target=target, files=files, manifest_config=config, \
         disable_path_validation=True)\n\
         \x20   print(r.status_code)\n",
    );
    assert_eq!(
        pushed.split_whitespace().collect::<Vec<_>>(),
        ["201", "201"]
    );
    for repo in ["cncf", "old"] {
        assert_runs_and_passes(&format!("oci://{host}/oras/{repo}:1"), &["--no-cache"]).await;
    }

    let http = wasm("http");
    push(&http, &format!("oci://{host}/vantage/http:1")).await;
    let out = oras(
        &host,
        dir.path(),
        "print(reg.pull(target=f'{host}/vantage/http:1', outdir='pulled'))\n",
    );
    // `oras` names the file after the layer's title annotation.
    assert!(out.contains("http.wasm"), "{out}");
    assert_eq!(
        std::fs::read(dir.path().join("pulled/http.wasm")).unwrap(),
        std::fs::read(&http).unwrap(),
        "oras pulled other bytes than Vantage pushed"
    );
}
