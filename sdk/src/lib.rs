//! Write [Vantage](https://github.com/vantage-monitoring/vantage) checks in
//! plain Rust.
//!
//! A check is a WebAssembly component that the Vantage daemon runs to prove,
//! from the outside, that a service works. This crate hides the component
//! plumbing: you implement the [`Check`] trait, call [`export_check!`] once,
//! and build with `cargo build --release --target wasm32-wasip2`.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use vantage_sdk::{http, log, Check, ConfigKey, Context, Error, Metadata, Outcome, ValueType};
//!
//! struct ApiHealth;
//!
//! impl Check for ApiHealth {
//!     // Optional: without it, name, version and description come from
//!     // Cargo.toml and the check asks for the operator's targets only.
//!     fn describe() -> Metadata {
//!         Metadata::new("api-health")
//!             .description("Proves the API answers 200 with a healthy JSON document.")
//!             .outbound("{target}")
//!             .config_key(ConfigKey::new("token", "Bearer token sent to the API.").sensitive())
//!             .config_key(
//!                 ConfigKey::new("latency.max", "Slowest acceptable response.")
//!                     .typed(ValueType::Duration)
//!                     .default("1s"),
//!             )
//!             .config_key(
//!                 ConfigKey::new("latency.warn", "Slower than this only warns.")
//!                     .typed(ValueType::Duration),
//!             )
//!     }
//!
//!     // Configuration keys not declared above were refused before this
//!     // runs, and values not of their key's type when the host loaded the
//!     // configuration.
//!     fn run(ctx: &Context) -> Result<Outcome, Error> {
//!         let url = &ctx.require_targets("configure the API URL as the check's target")?[0];
//!         let budget = ctx.config_duration("latency.max")?.unwrap_or(Duration::from_secs(1));
//!         let soft = ctx.config_duration("latency.warn")?;
//!
//!         let mut request = http::get(url).header("accept", "application/json");
//!         if let Some(token) = ctx.config("token") {
//!             request = request.bearer_auth(token);
//!         }
//!         let mut outcome = Outcome::new();
//!         match request.send() {
//!             Ok(response) => {
//!                 log::info!("{url} answered {}", response.status());
//!                 outcome.headline(response.headline());
//!                 outcome
//!                     .expect(&response)
//!                     .status_is(200)
//!                     .json_pointer_eq("/status", "ok")
//!                     .json_pointer_absent("/errors")
//!                     .latency_below(budget);
//!                 if let Some(soft) = soft {
//!                     // Over the soft limit: a warning, so the result is degraded.
//!                     outcome.assert_or_warn(
//!                         "latency below the soft limit",
//!                         response.elapsed() < soft,
//!                         response.headline(),
//!                     );
//!                 }
//!                 outcome.measure_response(&response);
//!             }
//!             Err(failed) => {
//!                 // Keep what is known: the partial status, redirects, phases.
//!                 outcome.assert("request completed", false, failed.to_string());
//!                 outcome.measure_fetch_error(&failed);
//!             }
//!         }
//!         Ok(outcome)
//!     }
//! }
//!
//! vantage_sdk::export_check!(ApiHealth);
//! ```
//!
//! The crate must be a `cdylib`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! vantage-sdk = { path = "../sdk" }
//! ```
//!
//! # What is in the box
//!
//! - [`Check`] and [`export_check!`]: the entry points. `run` returns
//!   `Result<Outcome, Error>`: [`Error`] takes configuration, network and
//!   secret errors with `?`, and becomes a failed result with its message as
//!   the summary.
//! - [`Metadata`] / [`ConfigKey`]: the self-description the host reads when it
//!   loads the check (capabilities it needs, configuration it understands,
//!   each key with a [`ValueType`] the host checks values against, and
//!   whether it is repeated, required or sensitive).
//! - [`Context`]: the run context, with helpers over the flattened, dotted
//!   configuration keys ([`Context::config`], [`Context::config_list`],
//!   [`Context::config_table`], [`Context::config_parse`], …).
//! - [`Outcome`]: records named assertions (each [pass, warn or
//!   fail](AssertionState)), labelled measurements and labels and computes the
//!   verdict (any failed assertion → [`Status::Fail`]; else any warning or an
//!   explicit [`Outcome::degrade`] → [`Status::Degraded`]).
//!   [`Outcome::expect`] adds ready-made HTTP assertions;
//!   [`Outcome::for_each_target`] probes several targets, keeping each one's
//!   assertions apart and labelling its measurements with the target.
//! - One module per host interface: [`http`], [`log`], [`clock`], [`secrets`],
//!   [`tls`], [`dns`], [`tcp`]. Each network call returns a [`NetError`] on
//!   failure (an HTTP exchange a [`http::FetchError`] that keeps what was
//!   learned before it failed); a bad *answer* (HTTP 500, an expired
//!   certificate) is data.
//! - The world also imports `wasi:http/outgoing-handler@0.2.12`; its
//!   bindings are under [`bindings::wasi`] for a check that wants it. A check
//!   that does not call it pays nothing: its component does not import it.
//!
//! # Features
//!
//! One regular-expression engine is on by default; the other is opt-in.
//!
//! - `regex-lite` (default): the regular-expression assertions
//!   ([`Expect::body_matches`], [`Expect::header_matches`], …) compile their
//!   pattern with the [`regex-lite`](https://docs.rs/regex-lite) crate, whose
//!   compiled `Regex` the `*_regex` assertions ([`Expect::body_matches_regex`],
//!   …; see [`Pattern`]) also take, re-exported as `vantage_sdk::regex_lite`.
//!   Rust `regex` syntax, except that `\d`, `\w`, `\s` and case folding are
//!   ASCII-only and there are no `\p{…}` classes. It is the default for its
//!   size and speed in a guest: the `http` check is a 324 KB component with
//!   it (290 KB on 0.1.0, where `regex` made it 578 KB), and a pattern compiles many times faster in
//!   Wasm, where a check pays every compile on every run.
//! - `regex` (opt-in): the full [`regex`](https://docs.rs/regex) crate
//!   (Unicode classes and case folding), re-exported as `vantage_sdk::regex`;
//!   its compiled `Regex` works with the `*_regex` assertions, and with this
//!   feature on, the `&str` assertions compile with it instead of
//!   `regex-lite`:
//!
//!   ```toml
//!   vantage-sdk = { version = "0.1", features = ["regex"] }
//!   ```
//!
//! With neither (`default-features = false`), the `&str` regex assertions are
//! not compiled in; the `*_regex` ones take any [`Pattern`].
//!
//! # Testing checks natively
//!
//! Everything that does not call the host (configuration helpers, [`Outcome`],
//! [`Expect`] on a hand-made [`http::Response`]) works in plain `cargo test` on
//! the build machine. Calling a host import outside a component panics.

#![warn(missing_docs)]

mod client;
mod context;
mod error;
mod metadata;
mod outcome;
mod pattern;
mod util;

pub mod clock;
pub mod dns;
pub mod http;
pub mod log;
pub mod secrets;
pub mod tcp;
pub mod tls;

/// Bindings generated by `wit-bindgen` from `wit/` (world `vantage:check/check`).
///
/// You rarely need these directly: the SDK re-exports the useful types and
/// wraps every import. They are public so that [`export_check!`] can expand in
/// your crate, and as an escape hatch.
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "check",
        pub_export_macro: true,
        export_macro_name: "__export_check_world",
        default_bindings_module: "vantage_sdk::bindings",
        additional_derives: [PartialEq],
        // `wasi:io` stream errors hold a resource, which has no `PartialEq`.
        additional_derives_ignore: ["stream-error"],
        // The world imports `wasi:http/outgoing-handler` (and through it
        // `wasi:http/types`, `wasi:io`, `wasi:clocks`) for languages whose HTTP
        // client speaks it. Their bindings are generated here too; a check
        // that never calls them pays nothing for them in its component (the
        // linker drops unused imports; see the crate docs for figures).
        generate_all,
    });
}

pub use context::{ConfigError, Context, ContextBuilder, RestoreContext};
pub use error::{Error, ErrorKind, NetError, SecretError};
pub use metadata::{ConfigKey, TARGET, ValueType};
pub use outcome::{Expect, Outcome, TargetHeadlines, json_loose_eq};
pub use pattern::Pattern;
pub use util::{format_duration, parse_duration, parse_size};

/// One named claim a check verified (see [`Outcome::assert`]).
pub use bindings::vantage::check::common::Assertion;
/// How an assertion came out: pass, warn or fail (see [`Outcome::record`]).
pub use bindings::vantage::check::common::AssertionState;
/// What a check needs from the host (see [`Metadata::outbound`]).
pub use bindings::vantage::check::common::Capabilities;
/// The raw result returned to the host; built by [`Outcome::into_result`].
pub use bindings::vantage::check::common::CheckResult;
/// One named number a check measured (see [`Outcome::measure`]).
pub use bindings::vantage::check::common::Measurement;
/// A check's self-description (see [`Metadata::new`] and its builder methods).
pub use bindings::vantage::check::common::Metadata;
/// Why a run is happening: a scheduled edge check or a restore validation.
pub use bindings::vantage::check::common::Mode;
/// The raw run context the host passes to `run`; wrapped by [`Context`].
pub use bindings::vantage::check::common::RunContext;
/// The verdict of a run: pass, degraded or fail.
pub use bindings::vantage::check::common::Status;

#[cfg(feature = "regex")]
pub use regex;
#[cfg(feature = "regex-lite")]
pub use regex_lite;
/// The `serde_json` crate, for [`http::Response::json`] and [`http::RequestBuilder::json`].
pub use serde_json;

/// A check: what it is ([`Check::describe`]) and what it does ([`Check::run`]).
///
/// Implement it on a unit struct and export it with [`export_check!`]. Both
/// functions are associated functions (no `self`): a component instance is
/// created for each run, so there is no state to keep between runs.
pub trait Check {
    /// The check's self-description, read by the host when it loads the check.
    ///
    /// Must be cheap and must not call the host. Fields left empty are filled
    /// by [`export_check!`] from *your* crate's `Cargo.toml`: an empty name
    /// becomes `CARGO_PKG_NAME`, an empty version `CARGO_PKG_VERSION`, an empty
    /// description `CARGO_PKG_DESCRIPTION`, and an empty mode list means both
    /// [`Mode::Edge`] and [`Mode::Restore`] (see
    /// [`Metadata::with_package_defaults`]).
    ///
    /// The default asks for nothing but the operator's targets
    /// (`outbound = ["{target}"]`, see [`TARGET`]) and declares no
    /// configuration keys.
    fn describe() -> Metadata {
        Metadata::default().outbound(TARGET)
    }

    /// Do one run and return its outcome.
    ///
    /// Before it is called, [`export_check!`] checks the configuration
    /// against [`describe`](Check::describe) when that declares at least one
    /// key (see [`Context::check_config_keys`]): a key it does not declare (a
    /// typo such as `expect.stauts`) or a [`required`](ConfigKey::required)
    /// key that is missing fails the run with a message naming the key, and
    /// `run` is not called. A check that declares no key gets its
    /// configuration as is.
    ///
    /// Return `Err` when the run cannot go on (bad configuration, no target,
    /// a secret that cannot be read): every [`Error`] becomes status `fail`
    /// with the error's message as the summary. A panic (or an allocation
    /// failure, or running past the deadline) is reported by the host as
    /// status `error` with the reason; prefer an `Err` for anything you can
    /// explain.
    fn run(ctx: &Context) -> Result<Outcome, Error>;
}

/// Export a [`Check`] implementation as the component's `describe` and `run`.
///
/// Invoke it exactly once per crate, at module level:
///
/// ```no_run
/// use vantage_sdk::{Context, Error, Outcome};
///
/// struct MyCheck;
/// impl vantage_sdk::Check for MyCheck {
///     fn run(ctx: &Context) -> Result<Outcome, Error> {
///         Ok(Outcome::new())
///     }
/// }
/// vantage_sdk::export_check!(MyCheck);
/// ```
///
/// The macro expands in your crate, so the defaults it fills into
/// [`Check::describe`]'s metadata (name, version, description) come from your
/// `Cargo.toml`.
#[macro_export]
macro_rules! export_check {
    ($check:ty) => {
        const _: () = {
            struct __VantageExport;

            impl $crate::bindings::Guest for __VantageExport {
                fn describe() -> $crate::Metadata {
                    $crate::__private::describe::<$check>(
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                        ::core::env!("CARGO_PKG_DESCRIPTION"),
                    )
                }

                fn run(context: $crate::RunContext) -> $crate::CheckResult {
                    $crate::__private::run::<$check>(context)
                }
            }

    $crate::bindings::__export_check_world!(__VantageExport with_types_in $crate::bindings);
        };
    };
}

/// Implementation details of [`export_check!`]. Not public API.
#[doc(hidden)]
pub mod __private {
    use crate::{Check, CheckResult, Context, Metadata, Outcome, RunContext};

    /// `describe`, with the user crate's Cargo metadata as defaults.
    pub fn describe<C: Check + ?Sized>(name: &str, version: &str, description: &str) -> Metadata {
        C::describe().with_package_defaults(name, version, description)
    }

    /// `run`: wrap the context, check the configuration against the
    /// declared keys (when the check declares any), run, and convert the
    /// outcome or the error.
    pub fn run<C: Check + ?Sized>(context: RunContext) -> CheckResult {
        let metadata = C::describe();
        let ctx = Context::new(context).with_metadata(&metadata);
        // Natively (unit tests of a check) there is no host clock to read.
        #[cfg(target_arch = "wasm32")]
        let ctx = ctx.start_clock();
        let checked = if metadata.config.is_empty() {
            Ok(())
        } else {
            ctx.check_config_keys(&metadata)
        };
        checked
            .and_then(|()| C::run(&ctx))
            .unwrap_or_else(Outcome::from)
            .into_result()
    }
}

#[cfg(test)]
mod run_tests;
