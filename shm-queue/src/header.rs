//! The versioned segment header and the layout it describes.
//!
//! ```text
//! offset 0              Header        magic, version, kind, capacity, element fingerprint, ...
//! control_offset        Control       indices, flags, wait words, stats, endpoint table
//! seqs_offset           [AtomicU64]   per-slot sequence numbers (all kinds but SPSC)
//! slots_offset          [T]           the elements
//! ```
//!
//! The creator writes everything, then stores `init_state = READY` with Release; an opener
//! waits (bounded) for READY with Acquire before it reads a single other field, and then only
//! reads a private copy, which it validates: a segment is untrusted input.

use std::mem::{align_of, size_of};

use crate::control::{Control, MAX_ENDPOINTS};
use crate::error::OpenError;
use crate::fingerprint::TypeFingerprint;
use crate::kind::KindId;
use crate::wake::WakePolicy;

/// `b"SHMPIPE\0"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMPIPE\0");
/// Bumped whenever the header or control block changes shape or meaning (2: endpoint slots
/// count their owners in the state word).
pub const FORMAT_VERSION: u32 = 2;
/// The largest capacity accepted (2^30 slots).
pub const MAX_CAPACITY: usize = 1 << 30;

/// `Header::init_state` values.
pub(crate) const INIT_READY: u32 = 0x5EAD_1E55;

/// Space reserved for the element type's name.
pub(crate) const TYPE_NAME_LEN: usize = 96;

/// The header as stored. Plain integers except `init_state`, which publishes the rest.
#[repr(C)]
pub(crate) struct Header {
    pub magic: u64,
    pub version: u32,
    /// Not a `sync` atomic: the header is never model-checked and must keep std's layout.
    pub init_state: std::sync::atomic::AtomicU32,
    pub kind: u32,
    pub wake_policy: u32,
    pub capacity: u64,
    pub slot_size: u32,
    pub slot_align: u32,
    pub type_hash: u64,
    pub type_name: [u8; TYPE_NAME_LEN],
    pub creator_pid: u32,
    pub max_endpoints: u32,
    pub creator_start_time: u64,
    pub total_len: u64,
    pub control_offset: u64,
    pub seqs_offset: u64,
    pub slots_offset: u64,
    pub consumer_wake_at: u32,
    pub producer_wake_at: u32,
    pub recheck_ms: u32,
    /// Items allowed in flight, at most `capacity` (below it only for SPSC).
    pub bound: u32,
    /// The creator's [`PidNamespace`](crate::PidNamespace), 0 if it could not tell: every pid
    /// in the segment is a pid of that namespace. It lies in what was the padding before the
    /// control block (zero in segments made before it existed, and ignored by their readers),
    /// so it needed no new format version.
    pub creator_pid_namespace: u64,
}

/// A validated private copy of a header: everything an opener may rely on.
#[derive(Debug, Clone)]
pub struct HeaderInfo {
    /// Ring kind.
    pub kind: KindId,
    /// Slots in the ring.
    pub capacity: usize,
    /// Items allowed in flight (`capacity` unless a smaller bound was set at creation).
    pub bound: usize,
    /// Element layout.
    pub element: TypeFingerprint,
    /// Wake policy chosen at creation.
    pub wake: WakePolicy,
    /// Interval at which sleepers re-check closure, poison and dead peers.
    pub recheck_ms: u32,
    /// The creating process.
    pub creator: crate::liveness::ProcessId,
    /// The creator's PID namespace, as [`PidNamespace::as_raw`](crate::PidNamespace::as_raw)
    /// gives it (0: unknown). The segment's pids, the creator's and its endpoints', are pids of
    /// that namespace.
    pub pid_namespace: u64,
    /// Bytes the segment needs.
    pub total_len: usize,
}

/// Where each part of a segment lies, computed from kind, capacity and element layout alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub control_offset: usize,
    pub seqs_offset: usize,
    pub slots_offset: usize,
    pub total_len: usize,
}

const CACHE_LINE: usize = 128;

/// `n` rounded up to a multiple of `to`; `None` on overflow (sizes may come from a header).
fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_next_multiple_of(to)
}

impl Layout {
    /// `None` when the sizes overflow or exceed what memory can hold.
    pub fn compute(kind: KindId, capacity: usize, slot_size: usize, slot_align: usize) -> Option<Self> {
        let control_offset = round_up(size_of::<Header>(), align_of::<Control>().max(CACHE_LINE))?;
        let seqs_offset = round_up(control_offset + size_of::<Control>(), CACHE_LINE)?;
        let seqs_len = if kind.has_slot_sequences() { capacity.checked_mul(8)? } else { 0 };
        let slots_offset = round_up(seqs_offset.checked_add(seqs_len)?, slot_align.max(CACHE_LINE))?;
        let total_len = round_up(slots_offset.checked_add(capacity.checked_mul(slot_size)?)?, page_size())?;
        // No allocation or mapping can be larger (and `alloc::Layout` refuses it).
        if total_len > isize::MAX as usize {
            return None;
        }
        Some(Self { control_offset, seqs_offset, slots_offset, total_len })
    }
}

pub(crate) fn page_size() -> usize {
    #[cfg(not(miri))]
    {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            return size as usize;
        }
    }
    4096
}

/// Checks a capacity: a power of two in `1..=MAX_CAPACITY`. Other values are refused rather
/// than rounded up, so a queue never holds more than its creator asked for.
pub(crate) fn check_capacity(capacity: usize) -> Result<(), crate::error::CreateError> {
    if capacity == 0 || capacity > MAX_CAPACITY || !capacity.is_power_of_two() {
        return Err(crate::error::CreateError::InvalidCapacity { capacity, max: MAX_CAPACITY });
    }
    Ok(())
}

impl Header {
    /// Fills in everything but `init_state` (left zero: not ready).
    pub fn new(
        kind: KindId,
        capacity: usize,
        bound: usize,
        element: &TypeFingerprint,
        wake: WakePolicy,
        recheck_ms: u32,
        layout: Layout,
    ) -> Self {
        let creator = crate::liveness::ProcessId::current();
        let mut type_name = [0u8; TYPE_NAME_LEN];
        let n = element.name.len().min(TYPE_NAME_LEN);
        type_name[..n].copy_from_slice(&element.name.as_bytes()[..n]);
        let (wake_policy, consumer_wake_at, producer_wake_at) = wake.encode();
        Self {
            magic: MAGIC,
            version: FORMAT_VERSION,
            init_state: std::sync::atomic::AtomicU32::new(0),
            kind: kind as u32,
            wake_policy,
            capacity: capacity as u64,
            slot_size: element.size,
            slot_align: element.align,
            type_hash: element.name_hash,
            type_name,
            creator_pid: creator.pid,
            max_endpoints: MAX_ENDPOINTS as u32,
            creator_start_time: creator.start_time,
            total_len: layout.total_len as u64,
            control_offset: layout.control_offset as u64,
            seqs_offset: layout.seqs_offset as u64,
            slots_offset: layout.slots_offset as u64,
            consumer_wake_at,
            producer_wake_at,
            recheck_ms,
            bound: bound as u32,
            creator_pid_namespace: crate::pid_namespace::PidNamespace::current_raw(),
        }
    }

    /// Validates a private copy taken after `init_state` read READY. `file_len` is the
    /// segment's real length, from `fstat`.
    pub fn validate(&self, file_len: u64) -> Result<(HeaderInfo, Layout), OpenError> {
        if self.magic != MAGIC {
            return Err(OpenError::BadMagic(String::new()));
        }
        if self.version != FORMAT_VERSION {
            return Err(OpenError::VersionMismatch { found: self.version, expected: FORMAT_VERSION });
        }
        let kind = KindId::from_raw(self.kind).ok_or(OpenError::LayoutMismatch("unknown ring kind"))?;
        let capacity = usize::try_from(self.capacity).map_err(|_| OpenError::LayoutMismatch("capacity"))?;
        if capacity == 0 || capacity > MAX_CAPACITY || !capacity.is_power_of_two() {
            return Err(OpenError::LayoutMismatch("capacity is not a power of two within limits"));
        }
        if self.slot_align == 0 || !self.slot_align.is_power_of_two() || self.slot_align as usize > page_size() {
            return Err(OpenError::LayoutMismatch("element alignment"));
        }
        if self.max_endpoints != MAX_ENDPOINTS as u32 {
            return Err(OpenError::LayoutMismatch("endpoint table size"));
        }
        let layout = Layout::compute(kind, capacity, self.slot_size as usize, self.slot_align as usize)
            .ok_or(OpenError::LayoutMismatch("sizes overflow"))?;
        if (self.control_offset, self.seqs_offset, self.slots_offset, self.total_len)
            != (
                layout.control_offset as u64,
                layout.seqs_offset as u64,
                layout.slots_offset as u64,
                layout.total_len as u64,
            )
        {
            return Err(OpenError::LayoutMismatch("offsets do not match the layout of this version"));
        }
        if file_len < layout.total_len as u64 {
            return Err(OpenError::Truncated { len: file_len, needed: layout.total_len as u64 });
        }
        let bound = self.bound as usize;
        if bound == 0 || bound > capacity || (kind != KindId::Spsc && bound != capacity) {
            return Err(OpenError::LayoutMismatch("bound"));
        }
        let wake = WakePolicy::decode(self.wake_policy, self.consumer_wake_at, self.producer_wake_at, bound)
            .ok_or(OpenError::LayoutMismatch("wake policy"))?;
        let name_len = self.type_name.iter().position(|&b| b == 0).unwrap_or(TYPE_NAME_LEN);
        let element = TypeFingerprint {
            size: self.slot_size,
            align: self.slot_align,
            name_hash: self.type_hash,
            name: String::from_utf8_lossy(&self.type_name[..name_len]).into_owned(),
        };
        let info = HeaderInfo {
            kind,
            capacity,
            bound,
            element,
            wake,
            recheck_ms: self.recheck_ms.clamp(1, 60_000),
            creator: crate::liveness::ProcessId { pid: self.creator_pid, start_time: self.creator_start_time },
            pid_namespace: self.creator_pid_namespace,
            total_len: layout.total_len,
        };
        Ok((info, layout))
    }
}

/// Checks the fingerprint recorded in a header against the type the caller expects.
pub(crate) fn check_element(found: &TypeFingerprint, expected: &TypeFingerprint) -> Result<(), OpenError> {
    let same_name = found.name_hash == expected.name_hash;
    if found.size != expected.size || found.align != expected.align || !same_name {
        return Err(OpenError::TypeMismatch { found: found.to_string(), expected: expected.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_still_fits_the_space_format_2_gave_it() {
        // The namespace took padding: the control block must not move.
        assert_eq!(std::mem::offset_of!(Header, creator_pid_namespace), 208);
        assert_eq!(Layout::compute(KindId::Spsc, 8, 8, 8).unwrap().control_offset, 256);
    }

    #[test]
    fn layout_keeps_parts_apart_and_aligned() {
        let l = Layout::compute(KindId::Mpmc, 1024, 8, 8).unwrap();
        assert!(l.control_offset >= size_of::<Header>());
        assert_eq!(l.control_offset % 128, 0);
        assert!(l.seqs_offset >= l.control_offset + size_of::<Control>());
        assert!(l.slots_offset >= l.seqs_offset + 1024 * 8);
        assert!(l.total_len >= l.slots_offset + 1024 * 8);
        let spsc = Layout::compute(KindId::Spsc, 1024, 8, 8).unwrap();
        assert_eq!(spsc.slots_offset, spsc.seqs_offset, "SPSC has no sequence array");
    }

    #[test]
    fn capacities_must_be_powers_of_two() {
        assert!(check_capacity(1).is_ok());
        assert!(check_capacity(1024).is_ok());
        assert!(check_capacity(0).is_err());
        assert!(check_capacity(3).is_err());
        assert!(check_capacity(MAX_CAPACITY * 2).is_err());
    }
}
