//! End-to-end tests: real HTTP servers on 127.0.0.1, the official checks and
//! test fixtures built from source for wasm32-wasip2, and the `vantage`
//! binary (or the library, where one process must survive several runs).
//!
//! One integration binary, one module per area.

mod support;

mod alert_rules;
mod alerting;
mod audit;
mod blackbox_parity;
mod cassettes;
mod check_examples;
mod cli;
mod compat_v0_1;
mod daemon;
mod deploy;
mod dns;
mod dns_server;
mod fleet;
mod flow;
mod fuzz;
mod heartbeats;
mod helm;
mod hostile;
mod hostile_daemon;
mod http_check;
mod js_checks;
mod kube_cluster;
mod kube_fake;
mod kube_fake_tests;
mod kube_native;
mod layers;
mod policy;
mod python_checks;
mod rbac;
mod redaction;
mod registry;
mod registry_oras;
mod registry_trust;
mod remote_write;
mod restart;
mod restore_adopt;
mod restore_cluster;
mod restore_daemon;
mod restore_daemon_isolation;
mod sandbox;
mod scheduling;
mod servers;
mod shard;
mod status_page;
mod tcp;
mod tls;
mod tls_servers;
