//! `[[remote_write]]`: read into the model with its defaults, and every
//! mistake named by file, line and key.

use super::*;
use crate::config::{RemoteWriteAuth, SecretSource};

const CHECK: &str = "[[check]]\nname = \"api\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n";

#[test]
fn a_remote_write_loads_with_its_queue_and_credentials() {
    let c = load_ok(&format!(
        "{CHECK}\n[[remote_write]]\nurl = \"https://prom.example.com/api/v1/write\"\n\
         headers = {{ \"X-Scope-OrgID\" = \"team-a\" }}\n\
         basic_auth = {{ username = \"edge\", password = \"file:secrets/pw\" }}\n\
         [remote_write.queue]\nmax_bytes = \"64MiB\"\nmax_age = \"30m\"\nshards = 4\n\n\
         [[remote_write]]\nname = \"mimir\"\nurl = \"http://127.0.0.1:9009/api/v1/push\"\n\
         bearer_token = \"env:MIMIR_TOKEN\"\n"
    ));
    assert_eq!(c.remote_write.len(), 2);
    let a = &c.remote_write[0];
    assert_eq!(a.name, "prom.example.com:443");
    assert_eq!(a.headers, vec![("X-Scope-OrgID".into(), "team-a".into())]);
    let Some(RemoteWriteAuth::Basic { username, password }) = &a.auth else {
        panic!("{:?}", a.auth)
    };
    assert_eq!(username, "edge");
    assert_eq!(
        password,
        &SecretSource::File(Path::new(FILE).parent().unwrap().join("secrets/pw"))
    );
    assert_eq!(a.queue.max_bytes, 64 << 20);
    assert_eq!(a.queue.max_age, Duration::from_secs(1800));
    assert_eq!(a.queue.shards, 4);
    assert_eq!(a.queue.max_samples_per_send, 2000);
    let b = &c.remote_write[1];
    assert_eq!(b.name, "mimir");
    assert_eq!(
        b.auth,
        Some(RemoteWriteAuth::Bearer(SecretSource::Env(
            "MIMIR_TOKEN".into()
        )))
    );
    assert!(c.warnings.is_empty(), "{}", shown(&c.warnings));
}

#[test]
fn remote_write_mistakes_name_line_and_key() {
    let rw = |rest: &str| format!("{CHECK}\n[[remote_write]]\n{rest}");
    one_error(
        &rw("name = \"x\"\n"),
        6,
        "url",
        "missing: the receiver's endpoint",
    );
    one_error(
        &rw("url = \"ftp://x/\"\n"),
        7,
        "url",
        "expected http:// or https://",
    );
    one_error(
        &rw("url = \"http://127.0.0.1:9090/api/v1/write\"\nheaders = { Authorization = \"x\" }\n"),
        8,
        "headers",
        "is set by the sender",
    );
    one_error(
        &rw(
            "url = \"http://127.0.0.1:9090/\"\nbearer_token = \"env:A\"\nbasic_auth = { username = \"u\", password = \"env:B\" }\n",
        ),
        8,
        "bearer_token",
        "not both",
    );
    one_error(
        &rw("url = \"http://127.0.0.1:9090/\"\nbearer_token = \"hunter2\"\n"),
        8,
        "bearer_token",
        "env:VARIABLE or file:",
    );
    one_error(
        &rw("url = \"http://127.0.0.1:9090/\"\n[remote_write.queue]\nshards = 0\n"),
        9,
        "shards",
        "between 1 and 64",
    );
    one_error(
        &rw("url = \"http://127.0.0.1:9090/\"\n[remote_write.queue]\nmax_bytes = \"1KiB\"\n"),
        9,
        "max_bytes",
        "at least 1MiB",
    );
    one_error(
        &rw("url = \"http://127.0.0.1:9090/\"\nqueue_size = 3\n"),
        8,
        "remote_write[0].queue_size",
        "unknown field",
    );
    let two = format!(
        "{CHECK}\n[[remote_write]]\nurl = \"http://127.0.0.1:9090/\"\n\n[[remote_write]]\nurl = \"http://127.0.0.1:9090/\"\n"
    );
    one_error(
        &two,
        9,
        "name",
        "a second remote_write named \"127.0.0.1:9090\"",
    );
    // Credentials over plain http to another host: loaded, with a warning.
    let c = load_ok(&rw(
        "url = \"http://prom.example.com/\"\nbearer_token = \"env:T\"\n",
    ));
    assert!(
        shown(&c.warnings).contains("plain http"),
        "{}",
        shown(&c.warnings)
    );
}

#[test]
fn heartbeats_load_and_their_mistakes_name_line_and_key() {
    let c = load_ok(
        "[[heartbeat]]\nname = \"backup\"\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n\
         grace = \"30m\"\ntoken = \"env:BACKUP_TOKEN\"\n\n\
         [[heartbeat]]\nname = \"sync\"\nperiod = \"10m\"\ntoken = \"file:tok\"\n",
    );
    assert_eq!(c.heartbeats.len(), 2);
    assert_eq!(c.heartbeats[0].grace, Duration::from_secs(1800));
    assert!(matches!(
        c.heartbeats[0].expect,
        crate::config::Expect::Cron(_, _, chrono_tz::Europe::Berlin)
    ));
    assert_eq!(c.heartbeats[1].grace, Duration::from_secs(3600));
    assert!(c.warnings.is_empty(), "{}", shown(&c.warnings));
    let hb = |rest: &str| format!("[[heartbeat]]\nname = \"backup\"\n{rest}");
    one_error(
        &hb("token = \"env:T\"\n"),
        1,
        "period",
        "when pings are expected",
    );
    one_error(
        &hb("period = \"1d\"\ncron = \"0 3 * * *\"\ntoken = \"env:T\"\n"),
        4,
        "cron",
        "not both",
    );
    one_error(&hb("period = \"1d\"\n"), 1, "token", "missing: token");
    one_error(
        &hb("period = \"1d\"\ntoken = \"s3cret\"\n"),
        4,
        "token",
        "env:VARIABLE or file:",
    );
    one_error(
        &hb("period = \"1d\"\ntimezone = \"UTC\"\ntoken = \"env:T\"\n"),
        4,
        "timezone",
        "cron only",
    );
    one_error(
        &hb("cron = \"0 3 31 2 *\"\ntoken = \"env:T\"\n"),
        3,
        "cron",
        "never matches",
    );
    one_error(
        &format!("{CHECK}\n[[heartbeat]]\nname = \"api\"\nperiod = \"1d\"\ntoken = \"env:T\"\n"),
        7,
        "name",
        "duplicate heartbeat name \"api\"",
    );
}
