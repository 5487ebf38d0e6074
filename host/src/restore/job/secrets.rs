//! Redacting a data job's log lines of the Secret values its environment
//! references.
//!
//! A job's env comes from Secrets restored into the volatile namespace
//! (`secretKeyRef`): the values never pass through Vantage, so the host's
//! redaction (the check sandbox's [`Redactor`]) does not know them, and a
//! job that prints its database password would put it into the report and
//! the audit record. Before the log lines are reported, Vantage reads the
//! referenced keys from the volatile namespace and redacts every fragment
//! of them ([`Redactor`]: every window of
//! [`MIN_FRAGMENT_CHARS`](crate::capabilities::secrets::MIN_FRAGMENT_CHARS)
//! characters, and the escaped / URL / base64 forms).
//!
//! Reading Secrets: Vantage's RBAC grants no Secret read anywhere (a
//! ClusterRole would reach production's Secrets too). Per run it binds, in
//! the volatile namespace only, the ClusterRole [`SECRET_READER_ROLE`]
//! (`get` on Secrets; `deploy/rbac.yaml` gives Vantage `bind` on that one
//! role) to itself: a RoleBinding whose only subject is the user the API
//! says Vantage is (`SelfSubjectReview`; RBAC matches a `User` subject
//! against the request's user name, service accounts included). The
//! admission policy refuses any other RoleBinding. The binding goes with
//! the namespace. If the values cannot be read, the log lines are withheld
//! (the job's verdict still uses them).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::capabilities::secrets::Redactor;
use crate::config::{JobEnv, RestoreJob};
use crate::restore::{Pacing, describe_kube_error};

/// The ClusterRole (`get` on Secrets) Vantage binds in the volatile
/// namespace, and the RoleBinding's name there.
pub const SECRET_READER_ROLE: &str = "vantage-job-secrets";
/// How often a Secret read refused with 403 is retried: the authorizer
/// sees a new RoleBinding after its informer caught up (usually well under
/// a second).
const FORBIDDEN_RETRIES: u32 = 10;
/// The longest pause between those retries.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The Secret keys `job`'s environment references, by Secret name.
pub fn referenced(job: &RestoreJob) -> BTreeMap<String, Vec<String>> {
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for value in job.env.iter().map(|(_, v)| v) {
        if let JobEnv::Secret { name, key } = value {
            let keys = refs.entry(name.clone()).or_default();
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    refs
}

/// A [`Redactor`] of every Secret value `job`'s environment references,
/// read from `namespace` (empty when it references none). Err: why they
/// could not be read; the caller must then not show the log.
pub async fn redactor(
    client: &kube::Client,
    namespace: &str,
    job: &RestoreJob,
    labels: &BTreeMap<String, String>,
    pacing: &Pacing,
) -> Result<Redactor, String> {
    let refs = referenced(job);
    let mut redactor = Redactor::default();
    if refs.is_empty() {
        return Ok(redactor);
    }
    grant_read(client, namespace, labels).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (name, keys) in &refs {
        // Absent: the Secret was not restored, so the container (whose
        // references are not optional) never started and logged nothing.
        let Some(secret) = read(&secrets, name, pacing).await? else {
            continue;
        };
        let data = secret.data.unwrap_or_default();
        for key in keys {
            if let Some(value) = data.get(key) {
                let text = String::from_utf8_lossy(&value.0);
                redactor.add(&text);
                // A value stored with a trailing newline is printed without.
                redactor.add(text.trim());
            }
        }
    }
    Ok(redactor)
}

/// Bind [`SECRET_READER_ROLE`] to Vantage itself in `namespace`.
async fn grant_read(
    client: &kube::Client,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| {
            format!(
                "asking the API who Vantage is (SelfSubjectReview): {}",
                describe_kube_error(&e)
            )
        })?;
    let user = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| "the API did not say who Vantage is (SelfSubjectReview)".to_string())?;
    let binding = build_binding(namespace, &user, labels);
    match Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
    {
        Ok(_) => Ok(()),
        // An earlier job of the run made it.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(format!(
            "binding {SECRET_READER_ROLE} in {namespace} to read the referenced Secrets: {}",
            describe_kube_error(&e)
        )),
    }
}

/// The RoleBinding granting [`SECRET_READER_ROLE`] in `namespace` to
/// `user` (a user name as the API reports it, service accounts included).
pub fn build_binding(
    namespace: &str,
    user: &str,
    labels: &BTreeMap<String, String>,
) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(SECRET_READER_ROLE.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "ClusterRole".to_string(),
            name: SECRET_READER_ROLE.to_string(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_string()),
            kind: "User".to_string(),
            name: user.to_string(),
            namespace: None,
        }]),
    }
}

/// Secret `name` (None: absent), retrying a 403 while the new binding
/// propagates.
async fn read(api: &Api<Secret>, name: &str, pacing: &Pacing) -> Result<Option<Secret>, String> {
    let mut forbidden = 0;
    loop {
        match api.get(name).await {
            Ok(secret) => return Ok(Some(secret)),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(kube::Error::Api(status))
                if status.code == 403 && forbidden + 1 < FORBIDDEN_RETRIES =>
            {
                forbidden += 1;
                tokio::time::sleep(pacing.poll_interval.min(RETRY_PAUSE)).await;
            }
            Err(e) => {
                return Err(format!(
                    "reading Secret {name} to redact its values: {}",
                    describe_kube_error(&e)
                ));
            }
        }
    }
}
