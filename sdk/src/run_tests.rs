//! What `export_check!` does around `Check::run`: the declared configuration
//! keys are checked first, and an `Err` becomes a failed result.

use crate::{Check, ConfigKey, Context, Error, Metadata, Outcome, RunContext, Status};

/// Declares `method` and a required `url`; passes with one assertion
/// naming each configuration key it saw, or fails with `Err` when
/// `method` is `BREW`.
struct Strict;

impl Check for Strict {
    fn describe() -> Metadata {
        Metadata::new("strict")
            .config_key(ConfigKey::new("method", "HTTP method."))
            .config_key(ConfigKey::new("url", "What to fetch.").required())
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        if ctx.config("method") == Some("BREW") {
            return Err(Error::config("method BREW is for teapots"));
        }
        Ok(echo(ctx))
    }
}

/// Declares no key: takes any configuration.
struct Lenient;

impl Check for Lenient {
    fn run(ctx: &Context) -> Result<Outcome, Error> {
        Ok(echo(ctx))
    }
}

fn echo(ctx: &Context) -> Outcome {
    let mut outcome = Outcome::new();
    for (key, _) in ctx.config_entries() {
        outcome.assert(format!("saw {key}"), true, "");
    }
    outcome
}

fn raw(config: &[(&str, &str)]) -> RunContext {
    Context::builder()
        .configs(config.iter().copied())
        .build()
        .raw()
        .clone()
}

#[test]
fn declared_keys_are_enforced_before_run() {
    let ok = crate::__private::run::<Strict>(raw(&[("url", "u"), ("method", "GET")]));
    assert_eq!(ok.status, Status::Pass);
    assert_eq!(ok.assertions.len(), 2);

    let typo = crate::__private::run::<Strict>(raw(&[("url", "u"), ("methd", "GET")]));
    assert_eq!(typo.status, Status::Fail);
    assert!(typo.assertions.is_empty(), "run was not called");
    assert!(
        typo.summary
            .starts_with("invalid config `methd`: unknown key; this check understands method, url"),
        "{}",
        typo.summary
    );

    let missing = crate::__private::run::<Strict>(raw(&[("method", "GET")]));
    assert_eq!(missing.status, Status::Fail);
    assert_eq!(missing.summary, "missing config `url`");
    assert!(missing.assertions.is_empty());

    // Reserved host keys are never unknown.
    let restore =
        crate::__private::run::<Strict>(raw(&[("url", "u"), ("vantage.restore.namespace", "ns")]));
    assert_eq!(restore.status, Status::Pass);
}

#[test]
fn an_error_from_run_is_a_failed_result_with_its_message() {
    let r = crate::__private::run::<Strict>(raw(&[("url", "u"), ("method", "BREW")]));
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.summary, "method BREW is for teapots");
    assert!(r.assertions.is_empty());
}

#[test]
fn a_check_declaring_no_keys_takes_any_configuration() {
    let r = crate::__private::run::<Lenient>(raw(&[("anything", "1"), ("else.0", "2")]));
    assert_eq!(r.status, Status::Pass);
    assert_eq!(r.assertions.len(), 2);
}
