//! `api-flow`: a deep application check in a few dozen lines — what a real
//! user's client does, step by step, each step an assertion with its own
//! timing:
//!
//! 1. log in: `POST {base}{login.path}` with `{"username": …, "password": …}`;
//!    the password comes from a granted secret, never from the config file;
//! 2. take the token from the JSON answer (`token_pointer`, default `/token`);
//! 3. call the API: `GET {base}{api.path}` with `Authorization: Bearer <token>`,
//!    and check its JSON (`expect.json.<pointer> = value`);
//! 4. log out: `POST {base}{logout.path}` (skipped when `logout.path` is empty).
//!
//! Cookies set by one step are sent by the next (the host keeps one cookie
//! jar per run), so session-cookie logins work too. Over `https://`, the
//! certificate chain the login saw is checked too (verdict and days to the
//! earliest expiry), and with `dns.name` set, the check also proves the name
//! resolves (through the `dns` interface; needs a `dns://` allow pattern).
//!
//! Every request takes the client settings the `http` check takes, under
//! blackbox_exporter's names (`ca_bundle`, `server_name`,
//! `client_cert_secret`, `min_tls_version`, `proxy_url`, `compression`,
//! `enable_http2`, `preferred_ip_protocol`, …; see
//! `vantage_sdk::http::ClientSettings`).
//!
//! ```text
//! vantage run api_flow.wasm --target https://app.example.com \
//!   --set login.username=monitor --secret password=env:APP_MONITOR_PASSWORD \
//!   --set expect.json./user/name=monitor
//! ```

use std::time::Duration;

use vantage_sdk::http::ClientSettings;
use vantage_sdk::{
    Check, ConfigKey, Context, Error, Metadata, Outcome, TARGET, ValueType, clock, dns, http,
    secrets, serde_json,
};

struct ApiFlow;

impl Check for ApiFlow {
    fn describe() -> Metadata {
        let metadata = Metadata::new("api-flow")
            .description(
                "Logs in with credentials from a secret, calls an authenticated API with the \
                 token, checks its JSON and logs out; every step is an assertion with its timing.",
            )
            .outbound(TARGET)
            .secret("password")
            .config_key(ConfigKey::new("login.path", "Path of the login endpoint.").default("/login"))
            .config_key(ConfigKey::new("login.username", "User to log in as.").required())
            .config_key(
                ConfigKey::new("login.password_secret", "Name of the secret holding the password.")
                    .default("password"),
            )
            .config_key(
                ConfigKey::new("token_pointer", "JSON pointer of the token in the login answer.")
                    .default("/token"),
            )
            .config_key(ConfigKey::new("api.path", "Path of the authenticated API call.").default("/api/me"))
            .config_key(ConfigKey::new(
                "expect.json.<pointer>",
                "A value the API's JSON must hold at <pointer>, e.g. `expect.json./user/name = \"monitor\"`.",
            ))
            .config_key(
                ConfigKey::new("logout.path", "Path of the logout endpoint; empty to skip.").default("/logout"),
            )
            .config_key(
                ConfigKey::new("step.max", "Slowest acceptable step.")
                    .typed(ValueType::Duration)
                    .default("2s"),
            )
            .config_key(
                ConfigKey::new("tls.min_days", "Over https, fewest days the chain must stay valid.")
                    .typed(ValueType::Number)
                    .default("14"),
            )
            .config_key(ConfigKey::new(
                "dns.name",
                "A name that must resolve to at least one A record (e.g. the API's host).",
            ))
            .config_key(ConfigKey::new(
                "dns.server",
                "Nameserver (`ip` or `ip:port`) to ask instead of the system resolver.",
            ));
        ClientSettings::declare(metadata)
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let base = ctx.require_targets("give this check the application's base URL")?[0]
            .trim_end_matches('/');
        // Declared required: the SDK refused the run without it.
        let username = ctx.config_or("login.username", "");
        let secret_name = ctx.config_or("login.password_secret", "password");
        let password = secrets::get(secret_name)
            .map_err(|e| Error::from(e).context("cannot read the password"))?;
        let step_max = ctx
            .config_duration("step.max")?
            .unwrap_or(Duration::from_secs(2));
        let client = ClientSettings::from_context(ctx)?;
        let mut outcome = Outcome::new();

        // 1. Log in.
        let body = serde_json::json!({ "username": username, "password": password });
        let Some(login) = log_in(&mut outcome, ctx, &client, base, &body) else {
            return Ok(outcome);
        };
        // 2. The token.
        let Some(token) = token(&mut outcome, ctx, &login) else {
            return Ok(outcome);
        };
        // 3. The authenticated call.
        call_api(&mut outcome, ctx, &client, base, &token, step_max);
        // 4. Log out.
        log_out(&mut outcome, ctx, &client, base, &token);
        // 5. The TLS chain the login saw (https only).
        if let Some(tls) = login.tls() {
            check_tls(&mut outcome, ctx, tls);
        }
        // 6. The name resolves.
        if let Some(name) = ctx.config("dns.name") {
            check_dns(&mut outcome, ctx, name);
        }
        outcome.measure("login_ms", login.timings().total_ms, "ms");
        outcome.headline(format!("flow as {username}"));
        Ok(outcome)
    }
}

/// Step 1: `POST {base}{login.path}` with `body`; the answer if it succeeded.
fn log_in(
    outcome: &mut Outcome,
    ctx: &Context,
    client: &ClientSettings,
    base: &str,
    body: &serde_json::Value,
) -> Option<http::Response> {
    let login_url = format!("{base}{}", ctx.config_or("login.path", "/login"));
    let login = match client
        .apply(
            http::post(&login_url)
                .json(body)
                .timeout(ctx.call_timeout(None)),
        )
        .send()
    {
        Ok(r) => r,
        Err(e) => {
            outcome.assert("log in", false, format!("POST {login_url}: {e}"));
            outcome.measure_fetch_error(&e);
            return None;
        }
    };
    outcome.assert_timed(
        "log in",
        login.is_success(),
        format!("POST {login_url}: {}", login.headline()),
        login.elapsed(),
    );
    login.is_success().then_some(login)
}

/// Step 2: the token at `token_pointer` in the login answer.
fn token(outcome: &mut Outcome, ctx: &Context, login: &http::Response) -> Option<String> {
    let pointer = ctx.config_or("token_pointer", "/token");
    let token = login.json().ok().and_then(|doc| {
        doc.pointer(pointer)
            .and_then(|t| t.as_str())
            .map(str::to_string)
    });
    let Some(token) = token else {
        outcome.assert(
            "token received",
            false,
            format!("no string at {pointer} in the login answer"),
        );
        return None;
    };
    outcome.assert(
        "token received",
        true,
        format!("{} characters at {pointer}", token.len()),
    );
    Some(token)
}

/// Step 3: `GET {base}{api.path}` with the token; its JSON against
/// `expect.json.*` and its time against `step_max`.
fn call_api(
    outcome: &mut Outcome,
    ctx: &Context,
    client: &ClientSettings,
    base: &str,
    token: &str,
    step_max: Duration,
) {
    let api_url = format!("{base}{}", ctx.config_or("api.path", "/api/me"));
    let request = http::get(&api_url)
        .bearer_auth(token)
        .header("accept", "application/json")
        .timeout(ctx.call_timeout(None));
    match client.apply(request).send() {
        Ok(api) => {
            outcome.assert_timed(
                "call API",
                api.status() == 200,
                format!("GET {api_url}: {}", api.headline()),
                api.elapsed(),
            );
            let mut expect = outcome.expect(&api);
            for (pointer, value) in ctx.config_table("expect.json") {
                expect.json_pointer_eq(pointer, value);
            }
            outcome.assert_duration_below("API call", api.elapsed(), step_max);
            outcome.measure("api_call_ms", api.timings().total_ms, "ms");
        }
        Err(e) => {
            outcome.assert("call API", false, format!("GET {api_url}: {e}"));
        }
    }
}

/// Step 4: `POST {base}{logout.path}` with the token, unless the path is empty.
fn log_out(outcome: &mut Outcome, ctx: &Context, client: &ClientSettings, base: &str, token: &str) {
    let logout_path = ctx.config_or("logout.path", "/logout");
    if logout_path.is_empty() {
        return;
    }
    let logout_url = format!("{base}{logout_path}");
    match client
        .apply(
            http::post(&logout_url)
                .bearer_auth(token)
                .timeout(ctx.call_timeout(None)),
        )
        .send()
    {
        Ok(r) => outcome.assert_timed(
            "log out",
            r.is_success(),
            format!("POST {logout_url}: {}", r.headline()),
            r.elapsed(),
        ),
        Err(e) => outcome.assert("log out", false, format!("POST {logout_url}: {e}")),
    };
}

/// Step 5: the chain the login saw is valid for `tls.min_days` more days.
fn check_tls(outcome: &mut Outcome, ctx: &Context, tls: &http::TlsInfo) {
    let min_days = ctx
        .config_parse::<f64>("tls.min_days")
        .ok()
        .flatten()
        .unwrap_or(14.0);
    let days = tls.days_left(clock::now_unix_ms()).unwrap_or(0.0);
    outcome.assert(
        "TLS chain valid",
        tls.verdict.is_valid(),
        format!(
            "{} ({}, {} certificates)",
            tls.verdict,
            tls.version,
            tls.chain.len()
        ),
    );
    outcome.assert(
        format!("TLS valid for {min_days} more days"),
        days >= min_days,
        format!("{days:.1} days left"),
    );
    outcome.measure("tls_cert_days_left", days, "days");
    outcome.measure_tls(tls);
}

/// Step 6: `name` has at least one A record (at `dns.server` if set).
fn check_dns(outcome: &mut Outcome, ctx: &Context, name: &str) {
    let mut query = dns::DnsQuery::new(name, dns::RecordType::A);
    if let Some(server) = ctx.config("dns.server") {
        query = query.server(server);
    }
    match dns::resolve(&query) {
        Ok(answer) => outcome.assert_timed(
            format!("{name} resolves"),
            answer.rcode == "NOERROR" && !answer.records.is_empty(),
            format!("{} with {} A records", answer.rcode, answer.records.len()),
            Duration::from_secs_f64(answer.duration_ms / 1000.0),
        ),
        Err(e) => outcome.assert(format!("{name} resolves"), false, e.to_string()),
    };
}

vantage_sdk::export_check!(ApiFlow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_keys_take_the_client_settings() {
        let m = ApiFlow::describe();
        let keys: Vec<&str> = m.config.iter().map(|k| k.key.as_str()).collect();
        for key in [
            "ca_bundle",
            "server_name",
            "proxy_url",
            "compression",
            "enable_http2",
        ] {
            assert!(keys.contains(&key), "{key}");
        }
        for key in &m.config {
            if let Some(default) = &key.default {
                assert!(key.value_type.check(default).is_ok(), "{}", key.key);
            }
        }
        let ctx = Context::builder()
            .config("login.username", "monitor")
            .config("step.max", "fast")
            .build();
        let err = ctx.check_config_values(&m).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid config `step.max`"),
            "{err}"
        );
    }
}
