//! The fake API server ([`crate::kube_fake`]) against recorded answers of
//! real API servers (`tests/fixtures/kube/`, sources in its README.md),
//! driven with kube-rs's real client and with raw HTTP.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use regex::Regex;
use serde_json::{Value, json};

use crate::kube_fake::FakeKube;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/team/leases";

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/kube")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The same keys at every level of objects (the first element of
/// arrays), the same JSON types at the leaves; keys in `extra` may be in
/// `actual` only.
fn assert_shape(recorded: &Value, actual: &Value, extra: &[&str], at: &str) {
    match (recorded, actual) {
        (Value::Object(r), Value::Object(a)) => {
            let missing: Vec<&String> = r.keys().filter(|k| !a.contains_key(*k)).collect();
            let added: Vec<&String> = a
                .keys()
                .filter(|k| !r.contains_key(*k) && !extra.contains(&k.as_str()))
                .collect();
            assert!(
                missing.is_empty() && added.is_empty(),
                "{at}: keys differ from the recorded answer: missing {missing:?}, added {added:?}\nrecorded: {recorded}\nactual: {actual}"
            );
            for (k, v) in r {
                assert_shape(v, &a[k], extra, &format!("{at}.{k}"));
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            if let (Some(r), Some(a)) = (r.first(), a.first()) {
                assert_shape(r, a, extra, &format!("{at}[0]"));
            }
        }
        (r, a) => assert_eq!(
            std::mem::discriminant(r),
            std::mem::discriminant(a),
            "{at}: recorded {r}, actual {a}"
        ),
    }
}

/// `object` with each managedFields entry's field set emptied (which
/// fields a manager owns differs from the recorded object; the format is
/// checked separately).
fn without_field_sets(object: &Value) -> Value {
    let mut copy = object.clone();
    let entries = if copy["metadata"]["managedFields"].is_array() {
        copy["metadata"]["managedFields"].as_array_mut()
    } else {
        copy.as_array_mut()
    };
    for entry in entries.into_iter().flatten() {
        entry["fieldsV1"] = json!({});
    }
    copy
}

async fn client(kube: &FakeKube) -> kube::Client {
    let config = kube::Config::new(kube.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn lease(name: &str, holder: &str) -> Lease {
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "team", "labels": {"app": "vantage"}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }))
    .unwrap()
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Read a watch response until `done` says stop (or 4 s pass); the events.
async fn read_events(
    response: &mut reqwest::Response,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("watch events in time")
            .expect("the watch stream");
        let Some(chunk) = chunk else { break };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            events.push(serde_json::from_slice(&line).expect("one JSON event per line"));
        }
    }
    events
}

#[tokio::test]
async fn kube_fake_create_assigns_versions_and_lists_like_a_real_server() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    let first = api
        .create(&PostParams::default(), &lease("a", "x"))
        .await
        .unwrap();
    let second = api
        .create(&PostParams::default(), &lease("b", "x"))
        .await
        .unwrap();
    let first_rv: u64 = first.metadata.resource_version.unwrap().parse().unwrap();
    let second_rv: u64 = second.metadata.resource_version.unwrap().parse().unwrap();
    assert!(second_rv > first_rv, "{first_rv} then {second_rv}");
    assert!(first.metadata.uid.is_some() && first.metadata.creation_timestamp.is_some());
    assert_ne!(first.metadata.uid, second.metadata.uid);
    let again = api.create(&PostParams::default(), &lease("a", "y")).await;
    let status = api_error(again);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    // A list carries the collection's current resourceVersion.
    let list: Value = reqwest::get(format!("{}{LEASES}", kube.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_shape(&fixture("list-pods.json"), &list, &[], "list");
    assert_eq!(list["kind"], "LeaseList");
    assert_eq!(list["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(rv(&list), second_rv);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // A Lease written with the recorded one's fields comes back in the
    // recorded shape (plus the fake's generation, which real Leases do not
    // carry), managed fields included.
    let recorded = fixture("lease-managed-fields.json");
    let mut body = recorded.clone();
    body["metadata"] = json!({"name": "recorded"});
    let posted = reqwest::Client::new()
        .post(format!(
            "{}{LEASES}?fieldManager=kube-controller-manager",
            kube.url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let posted: Value = posted.json().await.unwrap();
    assert_shape(
        &without_field_sets(&recorded),
        &without_field_sets(&posted),
        &["generation"],
        "lease",
    );
    assert_eq!(
        posted["metadata"]["managedFields"][0]["fieldsV1"],
        recorded["metadata"]["managedFields"][0]["fieldsV1"],
        "the same fields written by an Update are owned alike"
    );
    assert_eq!(
        posted["metadata"]["managedFields"][0]["manager"],
        "kube-controller-manager"
    );
    let stored = kube.object(LEASES, "a").unwrap();
    let entry = &stored["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Update");
    assert_eq!(
        entry["fieldsV1"]["f:spec"],
        json!({"f:holderIdentity": {}, "f:leaseDurationSeconds": {}})
    );
}

#[tokio::test]
async fn kube_fake_stale_replace_conflicts_like_a_real_server() {
    let kube = FakeKube::start().await;
    let url = kube.url();
    let http = reqwest::Client::new();
    let configmaps = format!("{url}/api/v1/namespaces/team/configmaps");
    let created: Value = http
        .post(&configmaps)
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "quota"}, "data": {"a": "1"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut update = created.clone();
    update["data"]["a"] = json!("2");
    let fresh = http
        .put(format!("{configmaps}/quota"))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let fresh: Value = fresh.json().await.unwrap();
    assert!(rv(&fresh) > rv(&created));

    // The same body again carries the old resourceVersion now.
    let stale = http
        .put(format!("{configmaps}/quota"))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    let body: Value = stale.json().await.unwrap();
    let recorded = fixture("status-409-stale-update.json");
    assert_shape(&recorded, &body, &[], "conflict");
    for key in ["kind", "apiVersion", "status", "reason", "code"] {
        assert_eq!(body[key], recorded[key], "{key}");
    }
    let pattern = Regex::new(
        r#"^Operation cannot be fulfilled on (\S+) "([^"]+)": the object has been modified; please apply your changes to the latest version and try again$"#,
    )
    .unwrap();
    assert!(pattern.is_match(recorded["message"].as_str().unwrap()));
    let found = pattern
        .captures(body["message"].as_str().unwrap())
        .expect("the real message");
    assert_eq!((&found[1], &found[2]), ("configmaps", "quota"));
    assert_eq!(
        kube.object("/api/v1/namespaces/team/configmaps", "quota")
            .unwrap()["data"]["a"],
        "2"
    );

    // Through kube-rs, a grouped resource: the group qualifies the name.
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    let mut old = api
        .create(&PostParams::default(), &lease("x", "a"))
        .await
        .unwrap();
    let mut newer = old.clone();
    newer.spec.as_mut().unwrap().holder_identity = Some("b".into());
    api.replace("x", &PostParams::default(), &newer)
        .await
        .unwrap();
    old.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let status = api_error(api.replace("x", &PostParams::default(), &old).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.starts_with(r#"Operation cannot be fulfilled on leases.coordination.k8s.io "x": the object has been modified"#),
        "{}",
        status.message
    );
    assert_eq!(
        kube.object(LEASES, "x").unwrap()["spec"]["holderIdentity"],
        "b"
    );

    // Replacing what is not there is 404, shaped like the real one.
    let missing = http
        .put(format!("{url}/api/v1/namespaces/team/pods/foobar-1"))
        .json(&json!({"metadata": {"name": "foobar-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    let recorded = fixture("status-404-not-found.json");
    assert_shape(&recorded, &body, &[], "not found");
    assert_eq!(body["message"], recorded["message"]);
    assert_eq!(body["details"], recorded["details"]);
}

#[tokio::test]
async fn kube_fake_server_side_apply_tracks_managers_and_conflicts_like_a_real_server() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    let applied = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "leader"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
    };

    // Applying to a missing object creates it: 201, like the real server.
    let http = reqwest::Client::new();
    let created = http
        .patch(format!(
            "{}{LEASES}/leader?fieldManager=replica-a",
            kube.url()
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(applied("replica-a").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let entries = created["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let recorded = fixture("lease-managed-fields.json");
    assert_shape(
        &without_field_sets(&recorded["metadata"]["managedFields"]),
        &without_field_sets(&created["metadata"]["managedFields"]),
        &[],
        "managedFields",
    );
    assert_eq!(entries[0]["manager"], "replica-a");
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );

    // Without a field manager an apply is refused.
    let anonymous = http
        .patch(format!("{}{LEASES}/leader", kube.url()))
        .header("content-type", "application/apply-patch+yaml")
        .body(applied("nobody").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 400);

    // Another manager changing an owned field conflicts...
    let b = PatchParams::apply("replica-b");
    let status = api_error(
        api.patch("leader", &b, &Patch::Apply(applied("replica-b")))
            .await,
    );
    let recorded = fixture("status-409-apply-conflict.json");
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let raw = http
        .patch(format!(
            "{}{LEASES}/leader?fieldManager=replica-b",
            kube.url()
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(applied("replica-b").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 409);
    let raw: Value = raw.json().await.unwrap();
    assert_shape(&recorded, &raw, &[], "apply conflict");
    assert_eq!(raw, {
        let mut expected = recorded.clone();
        expected["message"] = json!(
            "Apply failed with 1 conflict: conflict with \"replica-a\": .spec.holderIdentity"
        );
        expected["details"]["causes"][0]["message"] = json!("conflict with \"replica-a\"");
        expected["details"]["causes"][0]["field"] = json!(".spec.holderIdentity");
        expected
    });
    assert_eq!(status.message, raw["message"].as_str().unwrap());
    assert_eq!(
        kube.object(LEASES, "leader").unwrap()["spec"]["holderIdentity"],
        "replica-a"
    );

    // ...and with force it wins, taking the field (the equal one is shared).
    let forced = api
        .patch(
            "leader",
            &b.clone().force(),
            &Patch::Apply(applied("replica-b")),
        )
        .await
        .unwrap();
    assert_eq!(
        forced.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    let stored = kube.object(LEASES, "leader").unwrap();
    let owners = |field: &str| -> Vec<String> {
        stored["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["fieldsV1"]["f:spec"][field].is_null())
            .map(|e| e["manager"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(owners("f:holderIdentity"), vec!["replica-b"]);
    assert_eq!(
        owners("f:leaseDurationSeconds"),
        vec!["replica-a", "replica-b"]
    );

    // An Update (merge patch) takes a field too, and an apply then conflicts
    // with it as the real server prints Update managers.
    let editor = PatchParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    api.patch(
        "leader",
        &editor,
        &Patch::Merge(json!({"spec": {"holderIdentity": "manual"}})),
    )
    .await
    .unwrap();
    let status = api_error(
        api.patch("leader", &b, &Patch::Apply(applied("replica-b")))
            .await,
    );
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using coordination.k8s.io/v1: .spec.holderIdentity"
    );

    // Dropping a field from one's applied config removes it.
    let trimmed = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": "leader"}, "spec": {"holderIdentity": "manual"}});
    api.patch("leader", &b, &Patch::Apply(trimmed))
        .await
        .unwrap();
    let stored = kube.object(LEASES, "leader").unwrap();
    assert_eq!(
        stored["spec"]["leaseDurationSeconds"], 15,
        "replica-a still owns it"
    );
}

#[tokio::test]
async fn kube_fake_merge_strategic_and_json_patches() {
    let kube = FakeKube::start().await;
    let pods: Api<DynamicObject> = Api::namespaced_with(
        client(&kube).await,
        "team",
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods"),
    );
    let pod: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let pp = PatchParams::default();

    // RFC 7386: null removes, objects merge, lists replace.
    let merged = pods
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"tier": null, "v": "2"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged
            .metadata
            .labels
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [
            ("app".to_string(), "web".to_string()),
            ("v".to_string(), "2".to_string())
        ]
    );

    // Strategic: containers merge by name.
    let strategic = pods
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        strategic.data["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
    );

    // RFC 6902: add, replace, remove, and a failing test changes nothing.
    let json_patch = |ops: Value| {
        reqwest::Client::new()
            .patch(format!("{}/api/v1/namespaces/team/pods/web", kube.url()))
            .header("content-type", "application/json-patch+json")
            .body(ops.to_string())
            .send()
    };
    let patched = json_patch(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "a:1"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "a:3"},
        {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
        {"op": "remove", "path": "/metadata/labels/v"},
    ]))
    .await
    .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["spec"]["containers"][0]["image"], "a:3");
    assert_eq!(patched["metadata"]["annotations"]["k"], "v");
    assert!(patched["metadata"]["labels"].get("v").is_none());
    let before = kube.object("/api/v1/namespaces/team/pods", "web").unwrap();
    let failing = json_patch(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "a:1"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "a:4"},
    ]))
    .await
    .unwrap();
    assert_eq!(failing.status(), 422);
    assert_eq!(
        kube.object("/api/v1/namespaces/team/pods", "web").unwrap(),
        before
    );

    // Patching what is not there is 404.
    let status = api_error(pods.patch("nope", &pp, &Patch::Merge(json!({}))).await);
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn kube_fake_status_subresource_and_generation() {
    let kube = FakeKube::start().await;
    let checks: Api<DynamicObject> = Api::namespaced_with(
        client(&kube).await,
        "team",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("vantage.dev", "v1alpha1", "Check"),
            "checks",
        ),
    );
    let check: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "vantage.dev/v1alpha1", "kind": "Check",
        "metadata": {"name": "web"},
        "spec": {"interval": "30s"},
        "status": {"phase": "Forged"},
    }))
    .unwrap();
    let created = checks.create(&PostParams::default(), &check).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "a create does not set status"
    );

    let pp = PatchParams::default();
    let with_status = checks
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Passing"}, "spec": {"interval": "1s"}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["phase"], "Passing");
    assert_eq!(
        with_status.data["spec"]["interval"], "30s",
        "a status write changes only status"
    );
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );
    let rv_of = |o: &DynamicObject| -> u64 {
        o.metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rv_of(&with_status) > rv_of(&created));

    let main = checks
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Forged"}, "spec": {"interval": "10s"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        main.data["status"]["phase"], "Passing",
        "a main write ignores status"
    );
    assert_eq!(main.data["spec"]["interval"], "10s");
    assert_eq!(
        main.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );

    let labelled = checks
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "metadata changes keep the generation"
    );

    // replace_status with a stale resourceVersion conflicts.
    let mut stale = created.clone();
    stale.data["status"] = json!({"phase": "Failing"});
    let status = api_error(
        checks
            .replace_status("web", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains(r#"checks.vantage.dev "web""#),
        "{}",
        status.message
    );

    // managedFields tell main and status writers apart.
    let stored = kube
        .object("/apis/vantage.dev/v1alpha1/namespaces/team/checks", "web")
        .unwrap();
    let subresources: Vec<&Value> = stored["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["subresource"])
        .collect();
    assert!(subresources.contains(&&json!("status")), "{stored}");
}

#[tokio::test]
async fn kube_fake_watch_streams_changes_in_order_with_bookmarks() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    api.create(&PostParams::default(), &lease("before", "x"))
        .await
        .unwrap();
    let from = kube.resource_version();
    let mut watch = reqwest::get(format!(
        "{}{LEASES}?watch=true&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=10",
        kube.url()
    ))
    .await
    .unwrap();
    assert_eq!(watch.status(), 200);

    api.create(&PostParams::default(), &lease("w", "x"))
        .await
        .unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"holderIdentity": "y"}})),
    )
    .await
    .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();

    let events = read_events(&mut watch, |events| {
        events.iter().any(|e| e["type"] == "BOOKMARK")
    })
    .await;
    let changes: Vec<&Value> = events.iter().filter(|e| e["type"] != "BOOKMARK").collect();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert!(
        changes
            .iter()
            .all(|e| e["object"]["metadata"]["name"] == "w")
    );
    assert_eq!(changes[1]["object"]["spec"]["holderIdentity"], "y");
    let versions: Vec<u64> = changes.iter().map(|e| rv(&e["object"])).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(versions[0] > from);

    let bookmark = events.iter().find(|e| e["type"] == "BOOKMARK").unwrap();
    assert_shape(&fixture("watch-bookmark.json"), bookmark, &[], "bookmark");
    assert_eq!(bookmark["object"]["kind"], "Lease");
    assert_eq!(bookmark["object"]["apiVersion"], "coordination.k8s.io/v1");
    assert!(rv(&bookmark["object"]) >= versions[2]);
}

#[tokio::test]
async fn kube_fake_watch_from_a_compacted_version_gets_410_expired() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    api.create(&PostParams::default(), &lease("a", "x"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &lease("b", "x"))
        .await
        .unwrap();
    // Before compaction an old version replays what followed it.
    let mut replay = reqwest::get(format!("{}{LEASES}?watch=1&resourceVersion=1", kube.url()))
        .await
        .unwrap();
    let events = read_events(&mut replay, |e| !e.is_empty()).await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "b");

    kube.compact();
    let mut watch = reqwest::get(format!(
        "{}{LEASES}?watch=true&resourceVersion=1",
        kube.url()
    ))
    .await
    .unwrap();
    assert_eq!(
        watch.status(),
        200,
        "the 410 is in-band, like the real server's"
    );
    let events = read_events(&mut watch, |_| false).await;
    assert_eq!(
        events.len(),
        1,
        "the stream ends after the error: {events:?}"
    );
    let recorded = fixture("watch-error-410-expired.json");
    assert_shape(&recorded, &events[0], &[], "expired");
    for key in ["kind", "apiVersion", "status", "reason", "code"] {
        assert_eq!(events[0]["object"][key], recorded["object"][key], "{key}");
    }
    let pattern = Regex::new(r"^too old resource version: (\d+) \((\d+)\)$").unwrap();
    assert!(pattern.is_match(recorded["object"]["message"].as_str().unwrap()));
    let found = pattern
        .captures(events[0]["object"]["message"].as_str().unwrap())
        .expect("the real message");
    assert_eq!(&found[1], "1");
}

#[tokio::test]
async fn kube_fake_watch_from_now_with_selectors_and_timeout() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    api.create(&PostParams::default(), &lease("a", "x"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &lease("b", "x"))
        .await
        .unwrap();
    let mut other = lease("c", "x");
    other.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    api.create(&PostParams::default(), &other).await.unwrap();

    let started = std::time::Instant::now();
    let mut watch = reqwest::get(format!(
        "{}{LEASES}?watch=true&resourceVersion=0&labelSelector=app%3Dvantage&fieldSelector=metadata.name%3Db&timeoutSeconds=1",
        kube.url()
    ))
    .await
    .unwrap();
    let events = read_events(&mut watch, |_| false).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeoutSeconds ends the stream"
    );
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("ADDED", "b")]);

    // A change out of a watch's label selector is DELETED for it, back in
    // ADDED, as the real server reports them.
    let from = kube.resource_version();
    let mut watch = reqwest::get(format!(
        "{}{LEASES}?watch=true&resourceVersion={from}&labelSelector=app%3Dvantage&timeoutSeconds=5",
        kube.url()
    ))
    .await
    .unwrap();
    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    let pp = PatchParams::default();
    api.patch("a", &pp, &relabel("other")).await.unwrap();
    api.patch("a", &pp, &relabel("vantage")).await.unwrap();
    api.patch(
        "c",
        &pp,
        &Patch::Merge(json!({"spec": {"holderIdentity": "z"}})),
    )
    .await
    .unwrap();
    api.patch(
        "b",
        &pp,
        &Patch::Merge(json!({"spec": {"holderIdentity": "z"}})),
    )
    .await
    .unwrap();
    let events = read_events(&mut watch, |e| e.len() >= 3).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("DELETED", "a"), ("ADDED", "a"), ("MODIFIED", "b")]);
}

#[tokio::test]
async fn kube_fake_kube_runtime_watcher_sees_an_object_created_after_it_started() {
    let kube = FakeKube::start().await;
    let api: Api<Lease> = Api::namespaced(client(&kube).await, "team");
    api.create(&PostParams::default(), &lease("noise", "x"))
        .await
        .unwrap();
    let waiting = tokio::spawn(kube::runtime::wait::await_condition(
        api.clone(),
        "late",
        |lease: Option<&Lease>| {
            lease.and_then(|l| l.spec.as_ref()?.holder_identity.as_deref()) == Some("replica-b")
        },
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.create(&PostParams::default(), &lease("late", "replica-a"))
        .await
        .unwrap();
    api.patch(
        "late",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"holderIdentity": "replica-b"}})),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(4), waiting)
        .await
        .expect("the watcher saw the change")
        .unwrap()
        .unwrap()
        .expect("the object");
    assert_eq!(seen.metadata.name.as_deref(), Some("late"));
    // It listed, then watched with the name as a field selector.
    let log = kube.log();
    assert!(log.iter().any(|l| l == &format!("GET {LEASES}")), "{log:?}");
}

#[tokio::test]
async fn kube_fake_lists_across_namespaces_and_deletes_namespaces_with_contents() {
    let kube = FakeKube::start().await;
    let client = client(&kube).await;
    for ns in ["team", "ops"] {
        kube.insert(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
        let api: Api<Lease> = Api::namespaced(client.clone(), ns);
        let mut l = lease("l", "x");
        l.metadata.namespace = Some(ns.into());
        api.create(&PostParams::default(), &l).await.unwrap();
    }
    let all: Api<Lease> = Api::all(client.clone());
    let listed = all.list(&Default::default()).await.unwrap();
    let mut namespaces: Vec<String> = listed
        .items
        .iter()
        .filter_map(|l| l.metadata.namespace.clone())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["ops", "team"]);

    let from = kube.resource_version();
    let mut watch = reqwest::get(format!(
        "{}/apis/coordination.k8s.io/v1/leases?watch=true&resourceVersion={from}&timeoutSeconds=5",
        kube.url()
    ))
    .await
    .unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .delete("ops", &DeleteParams::default())
        .await
        .unwrap();
    let events = read_events(&mut watch, |e| !e.is_empty()).await;
    assert_eq!(events[0]["type"], "DELETED");
    assert_eq!(events[0]["object"]["metadata"]["namespace"], "ops");
    assert!(
        kube.names("/apis/coordination.k8s.io/v1/namespaces/ops/leases")
            .is_empty()
    );
    assert_eq!(kube.names(LEASES), ["l"]);
    assert_eq!(all.list(&Default::default()).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn kube_fake_outages_and_request_hooks() {
    let kube = FakeKube::start().await;
    // kube-rs retries 503 (and 429, 504) by default, up to 15 times with
    // backoff: a client that is to see the outage must not.
    let mut config = kube::Config::new(kube.url().parse().unwrap());
    config.default_retry = false;
    let api: Api<Lease> = Api::namespaced(kube::Client::try_from(config).unwrap(), "team");
    kube.set_unavailable(true);
    let status = api_error(api.get("x").await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (503, "ServiceUnavailable")
    );
    kube.set_unavailable(false);
    api.create(&PostParams::default(), &lease("x", "a"))
        .await
        .unwrap();

    // One client's outage: requests whose user agent names it fail.
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counted.clone();
    kube.set_hook(Some(std::sync::Arc::new(
        move |_method: &str, _path: &str, agent: &str| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            agent.contains("replica-b").then_some(503)
        },
    )));
    let b = reqwest::Client::builder()
        .user_agent("replica-b/1.0")
        .build()
        .unwrap();
    let failed = b
        .get(format!("{}{LEASES}/x", kube.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);
    api.get("x").await.expect("other clients still get answers");
    assert_eq!(counted.load(std::sync::atomic::Ordering::SeqCst), 2);
    kube.set_hook(None);
    assert_eq!(
        b.get(format!("{}{LEASES}/x", kube.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A hanging server: requests wait, then are answered.
    kube.set_delay(Some(Duration::from_millis(600)));
    let slow = tokio::time::timeout(Duration::from_millis(300), api.get("x")).await;
    assert!(slow.is_err(), "the request hangs");
    kube.set_delay(None);
    api.get("x").await.expect("answered at once again");

    // insert/remove are writes watches see.
    kube.insert(LEASES, json!({"metadata": {"name": "seeded"}, "spec": {}}));
    let seeded = kube.object(LEASES, "seeded").unwrap();
    assert_eq!(seeded["kind"], "Lease");
    assert_eq!(rv(&seeded), kube.resource_version());
    assert!(kube.remove(LEASES, "seeded").is_some());
    assert!(kube.object(LEASES, "seeded").is_none());
}
