//! The outbound policy: the one strict allow-list parser and matcher that
//! every network capability (`http`, `tls`, `dns`, `tcp`) enforces.
//!
//! Deny by default: a check reaches only what its allow list names, as
//! `scheme://host[:port]` patterns ([`AllowPattern`]), and never a special
//! address (loopback, private, link-local and cloud metadata, …) unless a
//! pattern names that address or network literally ([`AllowList::check_addr`]).
//! The parser rejects anything it would not enforce (paths, queries, user
//! info, `*` inside a name, port ranges) and says what to write instead.
//! An operator-wide ceiling limits every check's list
//! ([`AllowList::restrict_to`]).
//!
//! `{target}` is not handled here: configuration expands it to each target's
//! `scheme://host:port` before parsing.

mod cidr;
mod list;
mod pattern;
mod special;
mod target;

pub use cidr::{METADATA_ADDRESSES, metadata_inside, parse_net};
pub use list::{AllowList, Denied};
pub use pattern::{AllowPattern, HostPattern, PatternError, PortPattern, Scheme};
pub use special::{IpNet, is_special};
pub use target::{TARGET_PLACEHOLDER, expand_entry, target_origin};
