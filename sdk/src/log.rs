//! Structured logging from inside a check.
//!
//! Lines are captured per run (the host keeps the first 256 lines and 64 KiB),
//! shown by `vantage run` and forwarded to the daemon's logs tagged with the
//! check's name. Use the functions for plain strings and the macros for
//! `format!`-style messages:
//!
//! ```no_run
//! use vantage_sdk::log;
//! log::info("starting");
//! log::warn!("retrying {} after {} ms", "https://example.com/", 250);
//! ```
//!
//! Anything written to stdout/stderr (`println!`, `eprintln!`) is captured
//! too, stderr as `warn`.

use crate::bindings::vantage::check::log as raw;

pub use raw::Level;

/// Record one line at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message);
}

/// Record a `trace` line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Record a `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Record an `info` line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Record a `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Record an `error` line.
pub fn error(message: &str) {
    log(Level::Error, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_trace {
    ($($arg:tt)+) => { $crate::__vantage_log!(Trace, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_debug {
    ($($arg:tt)+) => { $crate::__vantage_log!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_info {
    ($($arg:tt)+) => { $crate::__vantage_log!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_warn {
    ($($arg:tt)+) => { $crate::__vantage_log!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vantage_error {
    ($($arg:tt)+) => { $crate::__vantage_log!(Error, $($arg)+) };
}

/// Record a `trace` line, `format!`-style: `log::trace!("x = {x}")`.
#[doc(inline)]
pub use crate::__vantage_trace as trace;

/// Record a `debug` line, `format!`-style: `log::debug!("x = {x}")`.
#[doc(inline)]
pub use crate::__vantage_debug as debug;

/// Record an `info` line, `format!`-style: `log::info!("x = {x}")`.
#[doc(inline)]
pub use crate::__vantage_info as info;

/// Record a `warn` line, `format!`-style: `log::warn!("x = {x}")`.
#[doc(inline)]
pub use crate::__vantage_warn as warn;

/// Record an `error` line, `format!`-style: `log::error!("x = {x}")`.
#[doc(inline)]
pub use crate::__vantage_error as error;
