//! Dynamic sharding (`--membership leases`): the members' Lease renewals,
//! as `kubernetes::membership` reports them, run through the rules of
//! [`rendezvous`](crate::daemon::shard::rendezvous) into the set of checks this replica
//! runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::rendezvous::{Assignment, Membership};
use crate::kubernetes::membership::Renewal;

/// This replica's view of the group.
#[derive(Debug)]
pub struct Dynamic {
    me: String,
    /// How long this replica renews before it owns anything.
    warmup: Duration,
    /// Since when it has renewed without a lapse.
    renewing_since: Option<Instant>,
    membership: Membership,
    assignment: Assignment,
    /// The renewal last counted, by member.
    counted: BTreeMap<String, String>,
    members: Vec<String>,
    running: Vec<String>,
}

impl Dynamic {
    /// Replica `me`, starting checks handed over by a live member `grace`
    /// after the handover, and owning nothing until it has renewed for
    /// `warmup` (longer than the others' renewal period, so that by then
    /// it has seen every live member renew twice and they have seen it).
    pub fn new(me: &str, grace: Duration, warmup: Duration) -> Self {
        Dynamic {
            me: me.to_string(),
            warmup,
            renewing_since: None,
            membership: Membership::default(),
            assignment: Assignment::new(me, grace),
            counted: BTreeMap::new(),
            members: Vec::new(),
            running: Vec::new(),
        }
    }

    /// Count the renewals not seen before (each is counted once, at `now`,
    /// on this replica's clock); then the checks of `names` this replica
    /// runs. `renewing` is false when this replica's own Lease lapsed: it
    /// then runs nothing. Whether the set (or the live members) changed.
    pub fn observe(
        &mut self,
        renewals: &[Renewal],
        renewing: bool,
        names: &[String],
        now: Instant,
    ) -> bool {
        for r in renewals {
            if self.counted.get(&r.member) != Some(&r.renew_time) {
                self.membership.renewed(&r.member, now, r.duration);
                self.counted.insert(r.member.clone(), r.renew_time.clone());
            }
        }
        // A Lease that is gone (a clean stop deletes it): that member left
        // now, not when its Lease would have expired.
        let present: Vec<&str> = renewals.iter().map(|r| r.member.as_str()).collect();
        let gone: Vec<String> = self
            .counted
            .keys()
            .filter(|m| !present.contains(&m.as_str()))
            .cloned()
            .collect();
        for member in gone {
            self.membership.left(&member);
            self.counted.remove(&member);
        }
        let members_before = std::mem::take(&mut self.members);
        self.members = self.membership.live(now);
        // A replica that just joined, came back after a restart, or had
        // its own Lease lapse owns nothing until it has renewed for the
        // warm-up: the others must see it before it runs their checks.
        if !renewing {
            self.renewing_since = None;
        } else if self.renewing_since.is_none() {
            self.renewing_since = Some(now);
        }
        let warm = self
            .renewing_since
            .is_some_and(|since| now >= since + self.warmup);
        let running = if warm {
            self.assignment.update(names, &self.members, now)
        } else {
            self.assignment.update(names, &[], now)
        };
        // The members count too: `vantage_shard_members` must follow.
        let changed = running != self.running || self.members != members_before;
        self.running = running;
        changed
    }

    /// Whether this replica runs `name` now.
    pub fn runs(&self, name: &str) -> bool {
        self.running
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    /// The live members.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// This replica's identity.
    pub fn me(&self) -> &str {
        &self.me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renewal(member: &str, at: u32) -> Renewal {
        Renewal {
            member: member.into(),
            renew_time: format!("2026-12-05T00:00:{at:02}Z"),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn three_replicas_split_the_checks_and_a_silent_one_loses_its_share_within_a_lease() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let names: Vec<String> = (0..60).map(|i| format!("check-{i}")).collect();
        let mut replicas: Vec<Dynamic> = (0..3)
            .map(|i| Dynamic::new(&format!("vantage-{i}"), s(5), s(4)))
            .collect();
        let mut leases: Vec<Renewal> = (0..3)
            .map(|i| renewal(&format!("vantage-{i}"), 0))
            .collect();
        for r in &mut replicas {
            r.observe(&leases, true, &names, t0);
            // One renewal: not a member yet, nothing runs.
            assert!(names.iter().all(|n| !r.runs(n)));
        }
        // The same renewal seen again does not count twice.
        for r in &mut replicas {
            r.observe(&leases, true, &names, t0 + s(1));
            assert!(r.members().is_empty());
        }
        leases = (0..3)
            .map(|i| renewal(&format!("vantage-{i}"), 5))
            .collect();
        for r in &mut replicas {
            r.observe(&leases, true, &names, t0 + s(5));
            assert_eq!(r.members().len(), 3);
        }
        for n in &names {
            assert_eq!(replicas.iter().filter(|r| r.runs(n)).count(), 1, "{n}");
        }
        // vantage-2 stops renewing at 5 s; the others keep renewing. At
        // 20 s its lease (15 s from when it was seen) has not expired yet…
        for at in [10, 15, 20] {
            leases = (0..2)
                .map(|i| renewal(&format!("vantage-{i}"), at))
                .chain([renewal("vantage-2", 5)])
                .collect();
            for r in &mut replicas[..2] {
                r.observe(&leases, true, &names, t0 + s(at.into()));
            }
        }
        assert_eq!(replicas[0].members().len(), 3);
        // …at 21 s it has, and its checks start at once on the other two.
        for r in &mut replicas[..2] {
            r.observe(&leases, true, &names, t0 + s(21));
            assert_eq!(r.members(), ["vantage-0", "vantage-1"]);
        }
        for n in &names {
            assert_eq!(replicas[..2].iter().filter(|r| r.runs(n)).count(), 1, "{n}");
        }
        // A replica whose own renewals fail runs nothing.
        assert!(replicas[0].observe(&leases, false, &names, t0 + s(22)));
        assert!(names.iter().all(|n| !replicas[0].runs(n)));
    }

    #[test]
    fn a_new_replica_owns_nothing_until_warm_and_a_deleted_lease_leaves_at_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let names: Vec<String> = (0..30).map(|i| format!("check-{i}")).collect();
        // vantage-1 restarted with its old Lease still there: one list and
        // one renewal count twice at once, and the peer has renewed twice.
        let mut fresh = Dynamic::new("vantage-1", s(5), s(5));
        let leases = [renewal("vantage-0", 0), renewal("vantage-1", 0)];
        fresh.observe(&leases, true, &names, t0);
        let leases = [renewal("vantage-0", 4), renewal("vantage-1", 4)];
        fresh.observe(&leases, true, &names, t0 + s(4));
        assert_eq!(fresh.members().len(), 2);
        // Live, but not warm: it runs nothing yet (the peer may not have
        // seen it), then its share once warm.
        assert!(names.iter().all(|n| !fresh.runs(n)));
        fresh.observe(&leases, true, &names, t0 + s(5));
        let mine = names.iter().filter(|n| fresh.runs(n)).count();
        assert!(mine > 0 && mine < names.len(), "{mine}");
        // vantage-0 stops cleanly (deletes its Lease): gone at once, long
        // before its Lease would have expired.
        let leases = [renewal("vantage-1", 6)];
        assert!(fresh.observe(&leases, true, &names, t0 + s(6)));
        assert_eq!(fresh.members(), ["vantage-1"]);
        assert!(names.iter().all(|n| fresh.runs(n)));
    }
}
