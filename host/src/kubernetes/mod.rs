//! Kubernetes-native Vantage (feature `kubernetes`): the `Check` and
//! `RestoreTest` custom resources and the daemon's side of them, and the
//! Leases replicas share checks and elect the restore leader with.
//!
//! - [`crd`]: the resources' types (one definition with `vantage.toml`'s
//!   keys) and `vantage crds`.
//! - [`render`]: resources → configuration tables, validated beside the file.
//! - [`watch`]: the watchers that keep the resources (and the Secrets and
//!   ConfigMaps they name) and hand the daemon fragments.
//! - [`status`]: the status subresource the runner of a check writes.
//! - [`membership`]: this replica's own Lease and the group's live members.
//! - [`leader`]: the restore leader's Lease.
//!
//! The rules over members (who owns which check, hysteresis) are the
//! daemon's (`daemon::shard`); this module only talks to the API server.

pub mod crd;
pub mod leader;
pub mod membership;
pub mod render;
pub mod status;
pub mod watch;
