//! The one `bindgen!` site for the `vantage:check` world.
//!
//! Every capability module implements the `Host` trait of its interface from
//! here; the runtime calls the exports through [`Check`] / [`CheckPre`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "check",
    // Host calls are async (network I/O) and may trap the guest (a host bug or
    // a resource-table error), hence `trappable`. Guest-visible failures are the
    // typed `net-error` / `secret-error` values, never traps.
    imports: { default: async | trappable },
    exports: { default: async },
    // Plain data in and out of every host call, so that a run's
    // interactions can be recorded to a cassette and replayed
    // (`capabilities::tape`).
    additional_derives: [serde::Serialize, serde::Deserialize],
    // The world declares `wasi:http/outgoing-handler`; wasmtime-wasi-http
    // implements it (see `capabilities::wasi_http`), so its types are theirs.
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use self::vantage::check::common;

/// The frozen `vantage:check@0.1.0` world (`runtime/wit-0.1.0`), so that
/// components built against it keep running unchanged next to 0.2.0 ones.
///
/// Frozen: `runtime/wit-0.1.0` is a copy of the 0.1.0 contract as released
/// and is never edited. The host implements these interfaces by adapting
/// each call to the 0.2.0 implementation
/// ([`capabilities::compat_v0_1`](crate::capabilities::compat_v0_1)), and the
/// runtime converts a 0.1.0 component's `describe` and `run` results to the
/// 0.2.0 types the rest of the host uses.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "wit-0.1.0",
        world: "check",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    pub use self::vantage::check::types;
}
