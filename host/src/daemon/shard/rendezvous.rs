//! Dynamic sharding's rules, before the Leases that will feed them (issue
//! 19): who owns a check among the live members, and when a member counts
//! as live. Pure, over explicit instants, so that they are tested at the
//! bounds; the Lease watcher will call them.
//!
//! - **Rendezvous (highest-random-weight) hashing**: every replica computes
//!   the same owner for a check from the same member list, with no
//!   coordination; a joining or leaving member moves only the checks it
//!   gains or held (about 1/N).
//! - **Hysteresis**: a member counts once it renewed its Lease twice, and
//!   stops counting once its Lease expired; a check that moves away keeps
//!   running on its previous owner for one grace period, so a flapping
//!   member does not make checks stop and start, and a handover never
//!   leaves a slot without a run.

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

    /// The members that count at `now`, sorted.
    pub fn live(&self, now: Instant) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(_, s)| s.renewals >= RENEWALS_TO_JOIN && s.expires >= now)
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Which checks this replica runs, keeping a moved check for `grace`.
#[derive(Debug)]
pub struct Assignment {
    me: String,
    grace: Duration,
    /// Checks this replica owned and lost, and until when it keeps them.
    leaving: BTreeMap<String, Instant>,
    owned: Vec<String>,
}

impl Assignment {
    /// The assignment of replica `me`, keeping moved checks for `grace`.
    pub fn new(me: &str, grace: Duration) -> Self {
        Assignment {
            me: me.to_string(),
            grace,
            leaving: BTreeMap::new(),
            owned: Vec::new(),
        }
    }

    /// The checks of `checks` this replica runs at `now` among `members`:
    /// those it owns, and those it owned until less than `grace` ago.
    pub fn update(&mut self, checks: &[String], members: &[String], now: Instant) -> Vec<String> {
        let owned: Vec<String> = checks
            .iter()
            .filter(|c| owner(c, members) == Some(self.me.as_str()))
            .cloned()
            .collect();
        for lost in self.owned.iter().filter(|c| !owned.contains(c)) {
            self.leaving.entry(lost.clone()).or_insert(now + self.grace);
        }
        self.leaving
            .retain(|c, until| *until > now && !owned.contains(c) && checks.contains(c));
        self.owned = owned;
        let mut running: Vec<String> = self
            .owned
            .iter()
            .chain(self.leaving.keys())
            .cloned()
            .collect();
        running.sort();
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
    fn a_moved_check_keeps_running_on_its_previous_owner_for_the_grace() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let checks = names("check", 200);
        let two = names("vantage", 2);
        let three = names("vantage", 3);
        let mut a = Assignment::new("vantage-0", grace);
        let before = a.update(&checks, &two, t0);
        let after_join = a.update(&checks, &three, t0 + Duration::from_secs(1));
        // Nothing stops at once: the checks that moved to vantage-2 stay.
        assert_eq!(before, after_join);
        let settled = a.update(&checks, &three, t0 + Duration::from_secs(12));
        let kept: Vec<&String> = before.iter().filter(|c| settled.contains(c)).collect();
        assert!(settled.len() < before.len());
        assert_eq!(kept.len(), settled.len());
        assert!(
            settled
                .iter()
                .all(|c| owner(c, &three) == Some("vantage-0"))
        );
        // A flap back within the grace loses nothing either.
        let mut b = Assignment::new("vantage-0", grace);
        b.update(&checks, &two, t0);
        b.update(&checks, &three, t0 + Duration::from_secs(1));
        assert_eq!(b.update(&checks, &two, t0 + Duration::from_secs(2)), before);
    }
}
