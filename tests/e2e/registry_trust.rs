//! Trusting what comes from a registry: cosign-compatible signatures
//! (`vantage keygen`, `vantage sign`, `[registry.verify]`, `--verify-key`)
//! checked before a component is compiled in `run`, `pull`, `inspect` and
//! the daemon; and a registry served over TLS by a test CA (`--registry-ca`,
//! `[registry] ca`). All against Debian's `docker-registry` on 127.0.0.1.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

use crate::daemon::{Daemon, check_of};
use crate::registry::{LocalRegistry, assert_runs_and_passes, owned, push, wait_result};
use crate::support::{start_target, vantage_async, wasm};

/// `vantage keygen --type TYPE DIR/NAME`: (NAME.key, NAME.pub).
async fn keygen(dir: &Path, name: &str, kind: &str) -> (String, String) {
    let base = dir.join(name);
    let out = vantage_async(owned(&["keygen", "--type", kind, base.to_str().unwrap()])).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let key = base.with_extension("key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is for its owner only");
    }
    (
        key.display().to_string(),
        base.with_extension("pub").display().to_string(),
    )
}

/// `vantage sign REF --key KEY`: its stdout.
async fn sign(reference: &str, key: &str) -> String {
    let out = vantage_async(owned(&["sign", reference, "--key", key])).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_written_as_cosign_does_and_checked_before_a_component_runs() {
    let registry = LocalRegistry::start();
    let keys = tempfile::tempdir().unwrap();
    let (team_key, team_pub) = keygen(keys.path(), "team", "ecdsa-p256").await;
    let (other_key, other_pub) = keygen(keys.path(), "other", "ed25519").await;
    let reference = format!("oci://{}/vantage/http:1.2.0", registry.host());
    let pinned = push(&wasm("http"), &reference).await;
    let digest = pinned.rsplit('@').next().unwrap().to_string();

    // Unsigned: refused under --verify-key, before anything is compiled.
    let target = start_target().await;
    let healthz = format!("{target}/healthz");
    let out = vantage_async(owned(&[
        "run",
        &reference,
        "--target",
        &healthz,
        "--verify-key",
        &team_pub,
    ]))
    .await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("is refused") && out.stderr.contains("is not signed"),
        "{}",
        out.stderr
    );

    // Signed by tag: the digest is what is signed, stored as cosign stores
    // it; signing again is a no-op.
    let said = sign(&reference, &team_key).await;
    assert!(said.contains(&format!("signed {pinned}")), "{said}");
    assert!(said.contains("1 signature(s)"), "{said}");
    let said = sign(&pinned, &team_key).await;
    assert!(said.contains("is already signed"), "{said}");
    let sig_tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let (manifest, config) = registry.read("vantage/http", &sig_tag).await;
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(
        layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok()),
        "{manifest:#}"
    );
    assert_eq!(config["rootfs"]["diff_ids"][0], layer["digest"]);

    // Verified: run, pull and inspect accept it and say by which key.
    assert_runs_and_passes(&reference, &["--verify-key", &team_pub]).await;
    let out = vantage_async(owned(&[
        "inspect",
        &reference,
        "--verify-key",
        &team_pub,
        "--json",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["signatures"], 1, "{doc:#}");
    assert_eq!(doc["verified"]["key"], team_pub.as_str(), "{doc:#}");
    assert_eq!(doc["metadata"]["name"], "http", "{doc:#}");

    // Another key is not trusted until it signs too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("http.wasm");
    let pull = |key: &str| {
        vantage_async(owned(&[
            "pull",
            &reference,
            "-o",
            file.to_str().unwrap(),
            "--verify-key",
            key,
        ]))
    };
    let out = pull(&other_pub).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "1 signature(s), none by a trusted key ({other_pub})"
        )),
        "{}",
        out.stderr
    );
    assert!(!file.exists(), "nothing is written for a refused component");
    let said = sign(&reference, &other_key).await;
    assert!(said.contains("2 signature(s)"), "{said}");
    let out = pull(&other_pub).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("signed by {other_pub}")),
        "{}",
        out.stdout
    );

    // The tag moves to an unsigned component: refused, the signed digest
    // still runs.
    push(&wasm("healthz"), &reference).await;
    let out = vantage_async(owned(&[
        "run",
        &reference,
        "--target",
        &healthz,
        "--verify-key",
        &team_pub,
    ]))
    .await;
    assert!(out.stderr.contains("is not signed"), "{}", out.stderr);
    assert_runs_and_passes(&pinned, &["--verify-key", &team_pub]).await;

    // The daemon: `require` with a per-prefix rule; a refused component
    // fails its check with the reason, the others run.
    let config_dir = tempfile::tempdir().unwrap();
    let check = |name: &str, component: &str| {
        format!(
            "\n[[check]]\nname = \"{name}\"\ncomponent = \"{component}\"\nevery = \"1s\"\n\
             targets = [\"{target}/healthz\"]\nallow = [\"{{target}}\"]\n"
        )
    };
    let body = format!(
        "\n[registry.verify]\nrequire = true\nkeys = [\"{other_pub}\"]\n\
         [[registry.verify.rule]]\nprefix = \"{}/vantage/\"\nkeys = [\"{team_pub}\"]\n{}{}",
        registry.host(),
        check("signed", &pinned),
        check("moved", &reference),
    );
    let mut daemon = Daemon::start(config_dir.path(), "", &body, &["--no-watch"]);
    let timeout = Duration::from_secs(20);
    wait_result(&daemon, "signed", timeout);
    wait_result(&daemon, "moved", timeout);
    let now = check_of(&daemon, "signed");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
    let why = check_of(&daemon, "moved")["last"]["result"].to_string();
    assert!(
        why.contains("is refused") && why.contains("is not signed"),
        "{why}"
    );
    assert!(
        daemon.stderr().contains("signature verified"),
        "{}",
        daemon.stderr()
    );
    daemon.sigterm();
    daemon.wait(timeout);

    // `vantage lock` does not pin what the policy refuses (the moved tag;
    // the other check is pinned by digest already).
    let config = config_dir.path().join("vantage.toml");
    let out = vantage_async(owned(&["lock", config.to_str().unwrap()])).await;
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is not signed"), "{}", out.stderr);
    assert!(!config_dir.path().join("vantage.lock").exists());
}

#[test]
fn a_signature_policy_is_validated_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("team");
    let out = crate::support::vantage(&["keygen", base.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let config = dir.path().join("vantage.toml");
    let validate = |text: &str| {
        std::fs::write(&config, text).unwrap();
        crate::support::vantage(&["validate", config.to_str().unwrap()])
    };
    let out = validate("[registry.verify]\nrequire = true\n");
    assert_eq!(out.code, 2, "{}", out.stdout);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("vantage.toml:1") && text.contains("require = true needs keys"),
        "{text}"
    );
    let out = validate("[registry.verify]\nrequire = true\nkeys = [\"team.key\"]\n");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("vantage.toml:3")
            && text.contains("keys")
            && text.contains("is a private key"),
        "{text}"
    );
    let out = validate(
        "[registry.verify]\nkeys = [\"team.pub\"]\n[[registry.verify.rule]]\nprefix = \"vantage/\"\nkeys = [\"team.pub\"]\n",
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("vantage.toml:4") && text.contains("invalid prefix \"vantage/\""),
        "{text}"
    );
    let out = validate("[registry.verify]\nrequire = true\nkeys = [\"team.pub\"]\n");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

/// PEM text of a DER block.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_served_by_a_test_ca_is_trusted_only_with_its_ca_bundle() {
    let ca = crate::tls_servers::root("Vantage Test Registry CA");
    let leaf = crate::tls_servers::leaf(&["127.0.0.1", "localhost"], &ca, -1, 30);
    let cert = pem("CERTIFICATE", &leaf.der);
    let key = pem("PRIVATE KEY", leaf.key.secret_der());
    let registry = LocalRegistry::start_with(
        "  tls:\n    certificate: {dir}/cert.pem\n    key: {dir}/key.pem\n",
        &[("cert.pem", &cert), ("key.pem", &key)],
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let ca_arg = format!("{}={}", registry.host(), ca_file.display());
    let reference = format!("oci://{}/tls/http:1", registry.host());
    let http = wasm("http");

    // Without the CA: HTTPS (a CA bundle is configured for nobody, so the
    // loopback registry is plain HTTP, which a TLS server refuses).
    let out = vantage_async(owned(&["push", http.to_str().unwrap(), &reference])).await;
    assert_ne!(out.code, 0, "{}", out.stdout);

    // With it: HTTPS, verified against the test CA.
    let out = vantage_async(owned(&[
        "push",
        http.to_str().unwrap(),
        &reference,
        "--registry-ca",
        &ca_arg,
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_runs_and_passes(&reference, &["--registry-ca", &ca_arg]).await;

    // Another CA does not verify the registry's chain.
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, crate::tls_servers::root("Someone Else").pem).unwrap();
    let out = vantage_async(owned(&[
        "pull",
        &reference,
        "--no-cache",
        "-o",
        dir.path().join("x.wasm").to_str().unwrap(),
        "--registry-ca",
        &format!("{}={}", registry.host(), wrong.display()),
    ]))
    .await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );

    // The daemon, with `[registry] ca`.
    let target = start_target().await;
    let body = format!(
        "\n[registry]\nca = {{ \"{}\" = \"{}\" }}\n\n[[check]]\nname = \"tls\"\n\
         component = \"{reference}\"\nevery = \"1s\"\ntargets = [\"{target}/healthz\"]\n\
         allow = [\"{{target}}\"]\n",
        registry.host(),
        ca_file.display()
    );
    let config_dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(config_dir.path(), "", &body, &["--no-watch"]);
    let timeout = Duration::from_secs(20);
    wait_result(&daemon, "tls", timeout);
    let now = check_of(&daemon, "tls");
    assert_eq!(now["last"]["result"]["status"], "pass", "{now}");
    daemon.sigterm();
    daemon.wait(timeout);
}
