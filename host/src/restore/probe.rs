//! Step 4b: the isolation probe. Isolation is a NetworkPolicy, and a
//! NetworkPolicy does nothing on a CNI that does not enforce it (flannel,
//! kubenet, a misconfigured Cilium): the restored app, holding production
//! Secrets, would reach production. So, once the app is ready, a
//! short-lived pod in each volatile namespace (selected by the isolating
//! policy like every pod there) tries to open a TCP connection to each
//! `isolation_probe` endpoint (e.g. the production database service) and
//! must fail. One that connects makes the verdict `error`: "CNI does not
//! enforce NetworkPolicy".
//!
//! The pod runs `/bin/sh` with `nc -z` (busybox by default), endpoints
//! passed as arguments (never spliced into the script), as an unprivileged
//! user without a ServiceAccount token. It writes the endpoints it reached
//! to its termination message (`status.containerStatuses[].state.
//! terminated.message`), so reading the result needs no `pods/log` right.
//! Exit 0: nothing reached; 1: something reached; anything else: the probe
//! could not run (no `nc` in the image, ...), also verdict `error`.

pub use crate::config::split_endpoint;
pub use crate::result::restore::ProbeInfo;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Capabilities, Container, Pod, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::{Pacing, delete_ignoring_absent, describe_kube_error};

/// The probe pod's name.
pub const PROBE_POD: &str = "vantage-isolation-probe";
/// Seconds each connection attempt may take.
pub const CONNECT_TIMEOUT_SECONDS: u32 = 3;
/// How long the probe may take, image pull included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// The script: `$1 $2` host and port, `$3 $4`, ... Exit 1 naming every
/// endpoint reached, 0 when none, 2 when `nc` is missing.
const SCRIPT: &str = r#"command -v nc >/dev/null 2>&1 || { echo "no nc in the probe image" >/dev/termination-log; exit 2; }
reached=""
while [ "$#" -ge 2 ]; do
  if nc -z -w "$TIMEOUT" "$1" "$2" </dev/null >/dev/null 2>&1; then reached="$reached $1:$2"; fi
  shift 2
done
if [ -n "$reached" ]; then echo "reached:$reached" >/dev/termination-log; exit 1; fi
echo "refused" >/dev/termination-log
exit 0"#;

/// The probe pod for `endpoints` (each valid per [`split_endpoint`]).
pub fn build_probe_pod(
    namespace: &str,
    endpoints: &[String],
    image: &str,
    labels: &BTreeMap<String, String>,
) -> Pod {
    let mut args = vec!["probe".to_string()];
    for (host, port) in endpoints.iter().filter_map(|e| split_endpoint(e)) {
        args.push(host);
        args.push(port.to_string());
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(PROBE_POD.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".to_string()),
            automount_service_account_token: Some(false),
            active_deadline_seconds: Some(PROBE_TIMEOUT.as_secs() as i64),
            termination_grace_period_seconds: Some(0),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(65534),
                run_as_group: Some(65534),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_string(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![Container {
                name: "probe".to_string(),
                image: Some(image.to_string()),
                command: Some(vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    SCRIPT.to_string(),
                ]),
                args: Some(args),
                env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
                    name: "TIMEOUT".to_string(),
                    value: Some(CONNECT_TIMEOUT_SECONDS.to_string()),
                    ..Default::default()
                }]),
                termination_message_policy: Some("File".to_string()),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    read_only_root_filesystem: Some(true),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".to_string()]),
                        ..Capabilities::default()
                    }),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Read a finished probe pod: None while it runs.
pub fn read_outcome(pod: &Pod, endpoints: &[String]) -> Option<ProbeInfo> {
    let status = pod.status.as_ref()?;
    let terminated = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref().and_then(|s| s.terminated.clone()));
    let mut info = ProbeInfo {
        endpoints: endpoints.to_vec(),
        ..ProbeInfo::default()
    };
    let Some(terminated) = terminated else {
        // Failed without a container result (deadline, eviction).
        if status.phase.as_deref() == Some("Failed") {
            info.error = Some(format!(
                "probe pod failed: {}",
                status
                    .reason
                    .clone()
                    .or(status.message.clone())
                    .unwrap_or_else(|| "no reason given".to_string())
            ));
            return Some(info);
        }
        return None;
    };
    let message = terminated.message.unwrap_or_default();
    match terminated.exit_code {
        0 => info.isolated = true,
        1 => {
            info.reached = message
                .trim()
                .strip_prefix("reached:")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if info.reached.is_empty() {
                info.error = Some(format!("probe exited 1: {}", message.trim()));
            }
        }
        code => {
            info.error = Some(format!(
                "probe exited {code}: {}",
                if message.trim().is_empty() {
                    terminated.reason.unwrap_or_default()
                } else {
                    message.trim().to_string()
                }
            ))
        }
    }
    Some(info)
}

/// Run the probe in `namespace` and wait for its outcome; the pod is
/// deleted afterwards (it also goes with the namespace). `adopting` (a run
/// taken over, [`super::adopt`]): a probe pod of the run already there is
/// waited for instead.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    endpoints: &[String],
    image: &str,
    labels: &BTreeMap<String, String>,
    pacing: &Pacing,
    timeout: Duration,
    adopting: bool,
) -> ProbeInfo {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let failed = |error: String| ProbeInfo {
        endpoints: endpoints.to_vec(),
        error: Some(error),
        ..ProbeInfo::default()
    };
    let pod = build_probe_pod(namespace, endpoints, image, labels);
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {}
        Err(e) if adopting && super::adopt::already_exists(&e) => {
            if let Err(why) = super::adopt::claim_made(&pods, PROBE_POD, labels).await {
                return failed(format!("taking over the probe pod: {why}"));
            }
        }
        Err(e) => {
            return failed(format!(
                "creating the probe pod: {}",
                describe_kube_error(&e)
            ));
        }
    }
    let start = Instant::now();
    let mut errors = 0;
    let info = loop {
        match pods.get(PROBE_POD).await {
            Ok(pod) => {
                errors = 0;
                if let Some(info) = read_outcome(&pod, endpoints) {
                    break info;
                }
            }
            Err(e) => {
                errors += 1;
                if errors >= super::restore_object::MAX_POLL_ERRORS {
                    break failed(format!(
                        "reading the probe pod: {}",
                        describe_kube_error(&e)
                    ));
                }
            }
        }
        if start.elapsed() >= timeout {
            break failed(format!(
                "the probe pod did not finish within {}",
                super::human_seconds(timeout.as_secs_f64())
            ));
        }
        tokio::time::sleep(
            pacing
                .poll_interval
                .min(timeout.saturating_sub(start.elapsed())),
        )
        .await;
    };
    if let Err(e) = delete_ignoring_absent(&pods, PROBE_POD).await {
        tracing::warn!(namespace, error = %describe_kube_error(&e), "deleting the isolation probe pod");
    }
    info
}

/// One outcome from the probes of several volatile namespaces (`(source
/// namespace, outcome)` each, the probe runs in every one): isolated only
/// if every probe ran and reached nothing; what was reached and what
/// failed name the source namespace (`host:port from SOURCE`). A single
/// probe's outcome is returned as it is.
pub fn combine(mut probes: Vec<(String, ProbeInfo)>) -> ProbeInfo {
    if probes.len() == 1 {
        return probes.remove(0).1;
    }
    let mut out = ProbeInfo {
        endpoints: probes
            .first()
            .map(|(_, p)| p.endpoints.clone())
            .unwrap_or_default(),
        isolated: !probes.is_empty(),
        ..ProbeInfo::default()
    };
    let mut errors = Vec::new();
    for (source, p) in probes {
        out.isolated &= p.isolated;
        out.reached
            .extend(p.reached.iter().map(|r| format!("{r} from {source}")));
        if let Some(e) = p.error {
            errors.push(format!("{source}: {e}"));
        }
    }
    out.error = (!errors.is_empty()).then(|| errors.join("; "));
    out
}

/// The run's verdict reason when isolation did not hold (verdict `error`),
/// or None when it did.
pub fn failure(info: &ProbeInfo) -> Option<String> {
    if !info.reached.is_empty() {
        return Some(format!(
            "CNI does not enforce NetworkPolicy: a pod in the volatile namespace reached {} \
             (isolation_probe); the restored app was not isolated from production",
            info.reached.join(", ")
        ));
    }
    info.error
        .as_ref()
        .map(|e| format!("isolation probe could not run, isolation unproven: {e}"))
}
