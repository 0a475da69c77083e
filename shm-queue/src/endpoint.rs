//! Who is attached: counts and the endpoint table in the control block.
//!
//! Counts decide closure (the last producer out closes the queue to consumers); the table
//! records each endpoint's owner so that one killed without detaching can be recognised as dead.

use crate::control::{
    slot_state, Control, EndpointSlot, CONSUMERS_GONE, GONE, MAX_ENDPOINTS, PEER_DEAD, POISONED, PRODUCERS_GONE,
    ROLE_CONSUMER, ROLE_PRODUCER,
};
use crate::error::AttachError;
use crate::kind::KindId;
use crate::liveness::ProcessId;
use crate::sync::{AtomicU32, Ordering};

/// The two roles an endpoint can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Role {
    /// Pushes.
    Producer = ROLE_PRODUCER,
    /// Pops.
    Consumer = ROLE_CONSUMER,
}

impl Role {
    /// `"producer"` or `"consumer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    fn count(self, ctl: &Control) -> &AtomicU32 {
        match self {
            Self::Producer => &ctl.state.producers,
            Self::Consumer => &ctl.state.consumers,
        }
    }

    fn gone_flag(self) -> u32 {
        match self {
            Self::Producer => PRODUCERS_GONE,
            Self::Consumer => CONSUMERS_GONE,
        }
    }

    fn multi(self, kind: KindId) -> bool {
        match self {
            Self::Producer => kind.multi_producer(),
            Self::Consumer => kind.multi_consumer(),
        }
    }
}

/// Records this process in a free table slot and counts one more endpoint of `role`.
///
/// The slot comes first: a count taken and then given back because the table was full could
/// make a concurrent last detach see a count that was not its own, and nobody would close the
/// queue.
pub(crate) fn attach(ctl: &Control, kind: KindId, role: Role) -> Result<u32, AttachError> {
    if ctl.state.flags.load(Ordering::Acquire) & POISONED != 0 {
        return Err(AttachError::Poisoned);
    }
    // Before the slot is claimed: the first call in a process reads `/proc` (tens of µs), and
    // a process killed between the count and the owner's pid leaves an endpoint nobody can
    // find dead. Taken here, that window is a few stores.
    let me = ProcessId::current();
    let (index, slot, claimed) = reserve_slot(ctl).ok_or(AttachError::TooManyEndpoints { max: MAX_ENDPOINTS })?;
    let count = role.count(ctl);
    let mut n = count.load(Ordering::Acquire);
    loop {
        let refused = if n & GONE != 0 {
            Some(AttachError::Closed { role: role.as_str() })
        } else if n >= 1 && !role.multi(kind) {
            Some(AttachError::RoleTaken { kind: kind.as_str(), role: role.as_str() })
        } else {
            None
        };
        if let Some(error) = refused {
            // Never filled in, so no scanner looked at it: give it back as it was.
            slot.state.store(slot_state::with(claimed, slot_state::FREE), Ordering::Release);
            return Err(error);
        }
        match count.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => n = now,
        }
    }
    fill_slot(slot, claimed, role, me);
    Ok(index)
}

/// Takes the first free slot for a new owner to fill in (FREE → CLAIMING); returns it with
/// the state word it now holds.
fn reserve_slot(ctl: &Control) -> Option<(u32, &EndpointSlot, u32)> {
    ctl.endpoints.iter().enumerate().find_map(|(i, slot)| {
        let word = slot.state.load(Ordering::Relaxed);
        let claimed = slot_state::next_owner(word, slot_state::CLAIMING);
        (slot_state::of(word) == slot_state::FREE
            && slot.state.compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed).is_ok())
        .then_some((i as u32, slot, claimed))
    })
}

/// Writes the owner into a slot we hold in CLAIMING (as state word `claimed`) and attaches it.
fn fill_slot(slot: &EndpointSlot, claimed: u32, role: Role, me: ProcessId) {
    slot.role.store(role as u32, Ordering::Relaxed);
    slot.pid.store(me.pid, Ordering::Relaxed);
    slot.start_time.store(me.start_time, Ordering::Relaxed);
    // Release: a scanner that Acquire-loads ATTACHED reads the owner written above.
    slot.state.store(slot_state::with(claimed, slot_state::ATTACHED), Ordering::Release);
}

fn slot_at(ctl: &Control, slot: u32) -> Option<&EndpointSlot> {
    ctl.endpoints.get(slot as usize)
}

/// Whether `slot` is attached and owned by this process: only then may a drop detach it (a
/// copy of an end inherited through `fork` is not the owner and must not count itself out).
pub(crate) fn owned_by_me(ctl: &Control, slot: u32) -> bool {
    slot_at(ctl, slot).is_some_and(|entry| attached_word_if_mine(entry).is_some())
}

/// The slot's state word, if it is attached and its owner is this process.
fn attached_word_if_mine(entry: &EndpointSlot) -> Option<u32> {
    let me = ProcessId::current();
    let word = entry.state.load(Ordering::Acquire);
    (slot_state::of(word) == slot_state::ATTACHED
        && entry.pid.load(Ordering::Relaxed) == me.pid
        && entry.start_time.load(Ordering::Relaxed) == me.start_time)
        .then_some(word)
}

/// Frees `slot` and counts the endpoint out. The last one out closes the role (sets `GONE`
/// and the matching flag). Returns whether this was the last.
pub(crate) fn detach(ctl: &Control, slot: u32, role: Role) -> bool {
    if let Some(entry) = slot_at(ctl, slot) {
        // FREE is 0: clearing the state bits keeps the count of owners.
        entry.state.fetch_and(!slot_state::MASK, Ordering::Release);
    }
    let count = role.count(ctl);
    let was = count.fetch_sub(1, Ordering::AcqRel);
    if was & !GONE != 1 {
        return false;
    }
    // We took the count to zero; close, unless somebody attached in between.
    if count.compare_exchange(0, GONE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // Release: pairs with the Acquire load of the flags in pop/push, so a consumer that
        // sees PRODUCERS_GONE also sees every item published before.
        ctl.state.flags.fetch_or(role.gone_flag(), Ordering::AcqRel);
        return true;
    }
    false
}

/// Marks our `slot` as handed over: still counted, owned by nobody until adopted. Refused
/// (false) unless this process owns the slot: a copy of an end inherited through `fork` must
/// not give away its parent's end.
pub(crate) fn hand_over(ctl: &Control, slot: u32) -> bool {
    slot_at(ctl, slot).is_some_and(|entry| {
        attached_word_if_mine(entry).is_some_and(|word| {
            let handed = slot_state::with(word, slot_state::HANDOVER);
            entry.state.compare_exchange(word, handed, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        })
    })
}

/// Takes over a handed-over `slot` of `role`.
pub(crate) fn adopt(ctl: &Control, slot: u32, role: Role) -> Result<(), AttachError> {
    if ctl.state.flags.load(Ordering::Acquire) & POISONED != 0 {
        return Err(AttachError::Poisoned);
    }
    let entry = slot_at(ctl, slot).ok_or(AttachError::NoPendingHandover { slot })?;
    if entry.role.load(Ordering::Relaxed) != role as u32 {
        return Err(AttachError::NoPendingHandover { slot });
    }
    // Before the claim, as in `attach`: a slot left CLAIMING by a process killed mid-read of
    // `/proc` would hold a counted end that no one owns.
    let me = ProcessId::current();
    let word = entry.state.load(Ordering::Acquire);
    let claimed = slot_state::next_owner(word, slot_state::CLAIMING);
    if slot_state::of(word) != slot_state::HANDOVER
        || entry.state.compare_exchange(word, claimed, Ordering::AcqRel, Ordering::Relaxed).is_err()
    {
        return Err(AttachError::NoPendingHandover { slot });
    }
    fill_slot(entry, claimed, role, me);
    Ok(())
}

/// Looks for an attached endpoint of `role` whose owner is dead. The first caller to find one
/// marks it DEAD (exactly one wins the CAS), poisons the queue naming it and wakes every
/// sleeper, so that the others hear of it now rather than at their own next re-check (up to
/// a minute later); returns its pid.
pub(crate) fn reap_dead(ctl: &Control, role: Role) -> Option<u32> {
    for entry in &ctl.endpoints {
        let seen = entry.state.load(Ordering::Acquire);
        if slot_state::of(seen) != slot_state::ATTACHED || entry.role.load(Ordering::Relaxed) != role as u32 {
            continue;
        }
        let owner =
            ProcessId { pid: entry.pid.load(Ordering::Relaxed), start_time: entry.start_time.load(Ordering::Relaxed) };
        if owner.is_alive() {
            continue;
        }
        if mark_dead(entry, seen) {
            poison(ctl, Some(owner.pid));
            crate::attached::wake_everyone(ctl);
            return Some(owner.pid);
        }
    }
    None
}

/// Marks an endpoint DEAD if it is still as `seen` (attached, same owner): the owner's liveness
/// was read in between, and the slot may have changed hands since.
fn mark_dead(entry: &EndpointSlot, seen: u32) -> bool {
    entry
        .state
        .compare_exchange(seen, slot_state::with(seen, slot_state::DEAD), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Marks the queue broken. A dead peer's pid is recorded by the first poisoner only.
pub(crate) fn poison(ctl: &Control, dead_pid: Option<u32>) {
    let state = &ctl.state;
    match dead_pid {
        Some(pid) => {
            if state.flags.load(Ordering::Acquire) & POISONED == 0 {
                state.dead_pid.store(pid, Ordering::Relaxed);
                // Release: whoever sees PEER_DEAD sees the pid.
                state.flags.fetch_or(PEER_DEAD | POISONED, Ordering::AcqRel);
            }
        }
        None => {
            state.flags.fetch_or(POISONED, Ordering::AcqRel);
        }
    }
}

/// An endpoint as recorded in the table, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Its slot in the table.
    pub slot: u32,
    /// Producer or consumer.
    pub role: Role,
    /// Its owner (for a handed-over end, the process that handed it over).
    pub owner: ProcessId,
    /// What the table says of it.
    pub state: EndpointState,
    /// Whether the owner is alive now.
    pub alive: bool,
}

/// The table's state of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// In use by its owner.
    Attached,
    /// Released by its owner for another process to adopt.
    HandedOver,
    /// Its owner was found dead.
    Dead,
}

pub(crate) fn list(ctl: &Control) -> Vec<EndpointInfo> {
    let mut out = Vec::new();
    for (i, entry) in ctl.endpoints.iter().enumerate() {
        let state = match slot_state::of(entry.state.load(Ordering::Acquire)) {
            slot_state::ATTACHED => EndpointState::Attached,
            slot_state::HANDOVER => EndpointState::HandedOver,
            slot_state::DEAD => EndpointState::Dead,
            _ => continue,
        };
        let role = match entry.role.load(Ordering::Relaxed) {
            ROLE_PRODUCER => Role::Producer,
            ROLE_CONSUMER => Role::Consumer,
            _ => continue,
        };
        let owner =
            ProcessId { pid: entry.pid.load(Ordering::Relaxed), start_time: entry.start_time.load(Ordering::Relaxed) };
        out.push(EndpointInfo { slot: i as u32, role, owner, state, alive: owner.is_alive() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: above the kernel's `PID_MAX_LIMIT` (2^22).
    const NO_SUCH_PID: u32 = 1 << 23;

    fn control() -> Box<Control> {
        Box::default()
    }

    /// Puts an attached `role` endpoint owned by a process that does not exist into a slot.
    fn attach_dead_owner(ctl: &Control, role: Role) -> u32 {
        let slot = attach(ctl, KindId::Mpmc, role).unwrap();
        ctl.endpoints[slot as usize].pid.store(NO_SUCH_PID, Ordering::Relaxed);
        slot
    }

    fn slots_in_use(ctl: &Control) -> usize {
        ctl.endpoints
            .iter()
            .filter(|slot| slot_state::of(slot.state.load(Ordering::SeqCst)) != slot_state::FREE)
            .count()
    }

    #[test]
    fn a_refused_attach_leaves_neither_a_count_nor_a_slot() {
        let ctl = control();
        let producer = attach(&ctl, KindId::Spsc, Role::Producer).unwrap();
        for _ in 0..2 * MAX_ENDPOINTS {
            assert!(matches!(attach(&ctl, KindId::Spsc, Role::Producer), Err(AttachError::RoleTaken { .. })));
        }
        assert_eq!((ctl.state.producers.load(Ordering::SeqCst), slots_in_use(&ctl)), (1, 1));
        // Fill the table; one more is refused before it is counted.
        let mut consumers = 0;
        while attach(&ctl, KindId::Mpmc, Role::Consumer).is_ok() {
            consumers += 1;
        }
        assert_eq!(consumers, MAX_ENDPOINTS - 1);
        assert!(matches!(
            attach(&ctl, KindId::Mpmc, Role::Consumer),
            Err(AttachError::TooManyEndpoints { max: MAX_ENDPOINTS })
        ));
        assert_eq!(ctl.state.consumers.load(Ordering::SeqCst) as usize, MAX_ENDPOINTS - 1);
        // The last producer out still closes its side.
        assert!(detach(&ctl, producer, Role::Producer));
        assert_ne!(ctl.state.flags.load(Ordering::SeqCst) & PRODUCERS_GONE, 0);
        assert!(matches!(attach(&ctl, KindId::Spsc, Role::Producer), Err(AttachError::Closed { .. })));
        assert_eq!(slots_in_use(&ctl), MAX_ENDPOINTS - 1);
    }

    #[test]
    fn a_slot_that_changed_hands_is_not_marked_dead_by_an_earlier_look() {
        let ctl = control();
        let live = attach(&ctl, KindId::Mpmc, Role::Producer).unwrap();
        let dead = attach_dead_owner(&ctl, Role::Producer);
        // A reaper reads the slot and goes to /proc, where the owner is dead...
        let seen = ctl.endpoints[dead as usize].state.load(Ordering::SeqCst);
        // ...meanwhile that owner had detached, and a live process took the slot over.
        assert!(!detach(&ctl, dead, Role::Producer));
        assert_eq!(attach(&ctl, KindId::Mpmc, Role::Producer).unwrap(), dead, "the first free slot");
        assert!(!mark_dead(&ctl.endpoints[dead as usize], seen), "the new owner's end is not dead");
        assert_eq!(reap_dead(&ctl, Role::Producer), None);
        // The same through a handover and adoption.
        let seen = ctl.endpoints[live as usize].state.load(Ordering::SeqCst);
        assert!(hand_over(&ctl, live));
        adopt(&ctl, live, Role::Producer).unwrap();
        assert!(!mark_dead(&ctl.endpoints[live as usize], seen), "adopted by a new owner");
        assert_eq!(ctl.state.flags.load(Ordering::SeqCst) & POISONED, 0);
    }

    #[test]
    fn reaping_a_dead_peer_poisons_and_wakes_every_sleeper() {
        let ctl = control();
        attach_dead_owner(&ctl, Role::Consumer);
        // Someone asleep on each side (a producer on "not full", a consumer on "not empty").
        ctl.not_full.sleepers.store(1, Ordering::SeqCst);
        ctl.not_empty.sleepers.store(1, Ordering::SeqCst);
        let before = (ctl.not_full.seq.load(Ordering::SeqCst), ctl.not_empty.seq.load(Ordering::SeqCst));
        assert_eq!(reap_dead(&ctl, Role::Consumer), Some(NO_SUCH_PID));
        assert_ne!(ctl.state.flags.load(Ordering::SeqCst) & (POISONED | PEER_DEAD), 0);
        let after = (ctl.not_full.seq.load(Ordering::SeqCst), ctl.not_empty.seq.load(Ordering::SeqCst));
        assert!(after.0 != before.0 && after.1 != before.1, "both sides were woken: {before:?} -> {after:?}");
        assert_eq!(reap_dead(&ctl, Role::Consumer), None, "a dead endpoint is reaped once");
    }
}
