//! Credentials for a registry, from where `docker login` and `podman login`
//! put them: `REGISTRY_AUTH_FILE` (podman's), then `$DOCKER_CONFIG/config.json`
//! or `~/.docker/config.json` and the credential helpers they name (read by
//! the `docker_credential` crate).

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

/// Where credentials are looked for, as a 401's error message says it.
const PLACES: &str = "looked in REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json and \
                      ~/.docker/config.json (and their credential helpers)";

/// The credentials for `registry` (`host[:port]`), and a sentence saying
/// where they were looked for and what was found (for a 401's error
/// message; never the secret itself).
pub fn credentials(registry: &str) -> (RegistryAuth, String) {
    let from_file = std::env::var_os("REGISTRY_AUTH_FILE")
        .and_then(|file| std::fs::read(file).ok())
        .and_then(|text| auth_file_entry(&text, registry));
    let found = from_file.or_else(|| match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            Some(RegistryAuth::Basic(user, password))
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            Some(RegistryAuth::Bearer(token))
        }
        Err(_) => None,
    });
    match found {
        Some(auth @ RegistryAuth::Basic(..)) => (
            auth,
            format!("{PLACES}: used the user name and password found"),
        ),
        Some(auth) => (auth, format!("{PLACES}: used the identity token found")),
        None => (
            RegistryAuth::Anonymous,
            format!("{PLACES}: none for {registry}"),
        ),
    }
}

/// The `auths.<registry>.auth` (base64 `user:password`) entry of a Docker
/// or podman auth file.
fn auth_file_entry(text: &[u8], registry: &str) -> Option<RegistryAuth> {
    let doc: serde_json::Value = serde_json::from_slice(text).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        host.eq_ignore_ascii_case(registry).then_some(value)
    })?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auth_file_entry_is_found_by_registry() {
        let text = br#"{"auths": {"https://127.0.0.1:5000/v2/": {"auth": "YWxpY2U6czNjcmV0"}}}"#;
        match auth_file_entry(text, "127.0.0.1:5000") {
            Some(RegistryAuth::Basic(user, password)) => {
                assert_eq!((user.as_str(), password.as_str()), ("alice", "s3cret"));
            }
            _ => panic!("no entry"),
        }
        assert!(auth_file_entry(text, "ghcr.io").is_none());
    }
}
