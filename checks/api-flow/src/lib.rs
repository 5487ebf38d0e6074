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
//! jar per run), so session-cookie logins work too.
//!
//! ```text
//! vantage run api_flow.wasm --target https://app.example.com \
//!   --set login.username=monitor --secret password=env:APP_MONITOR_PASSWORD \
//!   --set expect.json./user/name=monitor
//! ```

use std::time::Duration;

use vantage_sdk::{
    Check, ConfigKey, Context, Metadata, Outcome, TARGET, http, secrets, serde_json,
};

struct ApiFlow;

impl Check for ApiFlow {
    fn describe() -> Metadata {
        Metadata::new("api-flow")
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
            .config_key(ConfigKey::new("step.max", "Slowest acceptable step.").default("2s"))
    }

    fn run(ctx: &Context) -> Outcome {
        let Some(base) = ctx
            .targets()
            .first()
            .map(|t| t.trim_end_matches('/').to_string())
        else {
            return Outcome::failed("no target: give this check the application's base URL");
        };
        let Some(username) = ctx.config("login.username") else {
            return Outcome::failed("missing config `login.username`");
        };
        let secret_name = ctx.config_or("login.password_secret", "password");
        let password = match secrets::get(secret_name) {
            Ok(p) => p,
            Err(e) => return Outcome::failed(format!("cannot read the password: {e}")),
        };
        let step_max = match ctx.config_duration("step.max") {
            Ok(d) => d.unwrap_or(Duration::from_secs(2)),
            Err(e) => return Outcome::failed(e.to_string()),
        };
        let mut outcome = Outcome::new();

        // 1. Log in.
        let login_url = format!("{base}{}", ctx.config_or("login.path", "/login"));
        let body = serde_json::json!({ "username": username, "password": password });
        let login = match http::post(&login_url).json(&body).send() {
            Ok(r) => r,
            Err(e) => {
                outcome.assert("log in", false, format!("POST {login_url}: {e}"));
                return outcome;
            }
        };
        outcome.assert_timed(
            "log in",
            login.is_success(),
            format!("POST {login_url}: {}", login.headline()),
            login.elapsed(),
        );
        if !login.is_success() {
            return outcome;
        }

        // 2. The token.
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
            return outcome;
        };
        outcome.assert(
            "token received",
            true,
            format!("{} characters at {pointer}", token.len()),
        );

        // 3. The authenticated call.
        let api_url = format!("{base}{}", ctx.config_or("api.path", "/api/me"));
        match http::get(&api_url)
            .bearer_auth(&token)
            .header("accept", "application/json")
            .send()
        {
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
                outcome.latency_below("API call", api.elapsed(), step_max);
                outcome.measure("api_call_ms", api.timings().total_ms, "ms");
            }
            Err(e) => {
                outcome.assert("call API", false, format!("GET {api_url}: {e}"));
            }
        }

        // 4. Log out.
        let logout_path = ctx.config_or("logout.path", "/logout");
        if !logout_path.is_empty() {
            let logout_url = format!("{base}{logout_path}");
            match http::post(&logout_url).bearer_auth(&token).send() {
                Ok(r) => outcome.assert_timed(
                    "log out",
                    r.is_success(),
                    format!("POST {logout_url}: {}", r.headline()),
                    r.elapsed(),
                ),
                Err(e) => outcome.assert("log out", false, format!("POST {logout_url}: {e}")),
            };
        }
        outcome.measure("login_ms", login.timings().total_ms, "ms");
        outcome.headline(format!("flow as {username}"));
        outcome
    }
}

vantage_sdk::export_check!(ApiFlow);
