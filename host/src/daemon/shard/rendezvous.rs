//! Dynamic sharding's rules (`--membership leases`, fed by
//! `kubernetes::membership` through `daemon::shard::dynamic`): who owns a
//! check among the live members, and when a member counts as live. Pure,
//! over explicit instants, so that they are tested at the bounds.
//!
//! - **Rendezvous (highest-random-weight) hashing**: every replica computes
//!   the same owner for a check from the same member list, with no
//!   coordination; a joining or leaving member moves only the checks it
//!   gains or held (about 1/N).
//! - **Hysteresis**: a member counts once it renewed its Lease twice, and
//!   stops counting once its Lease expired, so a member that comes and goes
//!   does not move checks back and forth. A check handed over between two
//!   live members stops at once on the old owner and starts on the new one
//!   a grace period later (once the old one has surely stopped it), so no
//!   slot runs twice; a check whose owner left starts at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::stable_hash;

/// The weight of `member` for `check`: the owner is the highest.
fn weight(check: &str, member: &str) -> u64 {
    // Mix the two names unambiguously (a separator no name contains).
    stable_hash(&format!("{check}\u{0}{member}"))
}

/// The owner of `check` among `members` (none without members).
pub fn owner<'a>(check: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|m| (weight(check, m), m.as_str()))
        .map(String::as_str)
}

/// What the Leases said about one member.
#[derive(Debug, Clone)]
struct Seen {
    renewals: u32,
    expires: Instant,
}

/// The live members, from their Lease renewals.
#[derive(Debug, Default)]
pub struct Membership {
    seen: BTreeMap<String, Seen>,
}

/// Renewals a member needs before it counts.
pub const RENEWALS_TO_JOIN: u32 = 2;

impl Membership {
    /// `member` renewed its Lease at `now`, valid for `duration`.
    pub fn renewed(&mut self, member: &str, now: Instant, duration: Duration) {
        let entry = self.seen.entry(member.to_string()).or_insert(Seen {
            renewals: 0,
            expires: now,
        });
        if entry.expires < now {
            // It had lapsed: it joins again from the start.
            entry.renewals = 0;
        }
        entry.renewals = entry.renewals.saturating_add(1);
        entry.expires = now + duration;
    }

    /// `member`'s Lease is gone (it stopped cleanly): it no longer counts.
    pub fn left(&mut self, member: &str) {
        self.seen.remove(member);
    }

    /// The members that count at `now`, sorted.
    pub fn live(&self, now: Instant) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(_, s)| s.renewals >= RENEWALS_TO_JOIN && s.expires >= now)
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Which checks this replica runs. A check it loses stops at once; a check
/// it gains from a member that is still live starts `grace` later, once
/// that member has surely seen the change and stopped it (so no slot runs
/// twice); a check it gains from a member that left (its Lease expired)
/// starts at once.
#[derive(Debug)]
pub struct Assignment {
    me: String,
    grace: Duration,
    /// The live members at the previous update.
    before: Vec<String>,
    /// Checks gained from a live member, and when they start here.
    arriving: BTreeMap<String, Instant>,
    running: Vec<String>,
}

impl Assignment {
    /// The assignment of replica `me`, starting checks handed over by a
    /// live member `grace` after the handover.
    pub fn new(me: &str, grace: Duration) -> Self {
        Assignment {
            me: me.to_string(),
            grace,
            before: Vec::new(),
            arriving: BTreeMap::new(),
            running: Vec::new(),
        }
    }

    /// The checks of `checks` this replica runs at `now` among `members`,
    /// sorted.
    pub fn update(&mut self, checks: &[String], members: &[String], now: Instant) -> Vec<String> {
        let me = self.me.as_str();
        let mut running = Vec::new();
        let mut arriving = BTreeMap::new();
        for check in checks {
            if owner(check, members) != Some(me) {
                continue;
            }
            let starts = if let Some(at) = self.arriving.get(check) {
                Some(*at)
            } else if self.running.binary_search(check).is_ok() {
                None
            } else {
                // Newly gained: from whom?
                owner(check, &self.before)
                    .filter(|previous| *previous != me && members.iter().any(|m| m == previous))
                    .map(|_| now + self.grace)
            };
            match starts {
                Some(at) if at > now => {
                    arriving.insert(check.clone(), at);
                }
                _ => running.push(check.clone()),
            }
        }
        running.sort();
        self.before = members.to_vec();
        self.arriving = arriving;
        self.running = running.clone();
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i}")).collect()
    }

    #[test]
    fn every_check_has_one_owner_and_a_join_or_leave_moves_about_one_nth() {
        let checks = names("check", 4000);
        let three = names("vantage", 3);
        let four = names("vantage", 4);
        // Deterministic, whatever the order the members are listed in.
        let mut reversed = three.clone();
        reversed.reverse();
        for c in &checks {
            assert_eq!(owner(c, &three), owner(c, &reversed));
        }
        let moved = checks
            .iter()
            .filter(|c| owner(c, &three) != owner(c, &four))
            .count();
        // The fourth member takes about a quarter, all of them its own.
        assert!((800..1200).contains(&moved), "{moved} of 4000 moved");
        for c in &checks {
            if owner(c, &three) != owner(c, &four) {
                assert_eq!(owner(c, &four), Some("vantage-3"));
            }
        }
        // It leaves again: exactly those come back, nothing else moves.
        for c in &checks {
            if owner(c, &four) != Some("vantage-3") {
                assert_eq!(owner(c, &three), owner(c, &four), "{c}");
            }
        }
        assert_eq!(owner("x", &[]), None);
    }

    #[test]
    fn a_member_counts_after_two_renewals_and_not_once_its_lease_expired() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(15);
        let mut m = Membership::default();
        m.renewed("a", t0, lease);
        assert!(m.live(t0).is_empty());
        m.renewed("a", t0 + Duration::from_secs(5), lease);
        assert_eq!(m.live(t0 + Duration::from_secs(5)), ["a"]);
        assert_eq!(m.live(t0 + Duration::from_secs(20)), ["a"]);
        assert!(m.live(t0 + Duration::from_secs(21)).is_empty());
        // Back after lapsing: two renewals again.
        m.renewed("a", t0 + Duration::from_secs(30), lease);
        assert!(m.live(t0 + Duration::from_secs(30)).is_empty());
    }

    #[test]
    fn a_moved_check_stops_at_once_and_starts_on_its_new_owner_after_the_grace() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let grace = s(5);
        let checks = names("check", 300);
        let two = names("vantage", 2);
        let three = names("vantage", 3);
        let mut old = Assignment::new("vantage-0", grace);
        let mut new = Assignment::new("vantage-2", grace);
        let before = old.update(&checks, &two, t0);
        assert!(new.update(&checks, &two, t0).is_empty(), "not a member yet");
        // vantage-2 joins: vantage-0 stops what moved at once…
        let after = old.update(&checks, &three, t0 + s(1));
        let moved: Vec<&String> = before.iter().filter(|c| !after.contains(c)).collect();
        assert!(!moved.is_empty() && moved.len() < before.len());
        assert!(moved.iter().all(|c| owner(c, &three) == Some("vantage-2")));
        // …and vantage-2 starts them only after the grace (no slot twice).
        assert!(new.update(&checks, &three, t0 + s(1)).is_empty());
        assert!(new.update(&checks, &three, t0 + s(5)).is_empty());
        let started = new.update(&checks, &three, t0 + s(6));
        let mut mine: Vec<&String> = checks
            .iter()
            .filter(|c| owner(c, &three) == Some("vantage-2"))
            .collect();
        mine.sort();
        assert_eq!(started.iter().collect::<Vec<_>>(), mine);
        // Every check runs on exactly one member once settled.
        let mut other = Assignment::new("vantage-1", grace);
        other.update(&checks, &two, t0);
        let third = other.update(&checks, &three, t0 + s(6));
        let settled = old.update(&checks, &three, t0 + s(6));
        for c in &checks {
            let n = [&settled, &third, &started]
                .iter()
                .filter(|r| r.contains(c))
                .count();
            assert_eq!(n, 1, "{c}");
        }
        // vantage-2 leaves (its Lease expired): its checks start at once on
        // their new owners, there is nobody to wait for.
        let back = old.update(&checks, &two, t0 + s(30));
        assert_eq!(back, before);
    }

    #[test]
    fn a_first_assignment_starts_everything_it_owns_at_once() {
        let t0 = Instant::now();
        let checks = names("check", 100);
        let three = names("vantage", 3);
        let mut a = Assignment::new("vantage-1", Duration::from_secs(5));
        let first = a.update(&checks, &three, t0);
        let mut owned: Vec<String> = checks
            .iter()
            .filter(|c| owner(c, &three) == Some("vantage-1"))
            .cloned()
            .collect();
        owned.sort();
        assert_eq!(first, owned);
    }
}
