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
    // The world declares `wasi:http/outgoing-handler`; wasmtime-wasi-http
    // implements it (see `capabilities::wasi_http`), so its types are theirs.
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use self::vantage::check::common;
