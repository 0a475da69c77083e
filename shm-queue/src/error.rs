//! Error types: one enum per operation, each variant naming its cause.

use std::io;

use thiserror::Error;

/// Why a shared-memory name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name must start with `/`.
    #[error("shared-memory name must start with '/'")]
    MissingLeadingSlash,
    /// Nothing follows the `/`.
    #[error("shared-memory name is empty after its leading '/'")]
    Empty,
    /// A `/` other than the leading one.
    #[error("shared-memory name may not contain '/' after the leading one")]
    InnerSlash,
    /// `/.` and `/..` name directories.
    #[error("shared-memory name may not be '.' or '..'")]
    DotName,
    /// Longer than `NAME_MAX`.
    #[error("shared-memory name is {len} characters long, the limit is {max}")]
    TooLong {
        /// Length without the leading `/`.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Space, control or non-ASCII character.
    #[error("shared-memory name contains {found:?}: only printable ASCII characters other than space are allowed")]
    NotPrintable {
        /// The first offending character.
        found: char,
    },
}

/// Why a queue could not be created.
#[derive(Debug, Error)]
pub enum CreateError {
    /// The name broke a rule.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    /// A segment of that name exists already (segments are created with `O_EXCL`).
    #[error("a shared-memory segment named {0} already exists")]
    AlreadyExists(String),
    /// The kernel refused access (`EACCES`/`EPERM`).
    #[error("permission denied creating {0}")]
    PermissionDenied(String),
    /// `/dev/shm` (or the memory behind it) is full: reported at creation, never as SIGBUS later.
    #[error("no space left for a {len}-byte segment {name}")]
    NoSpace {
        /// Segment name.
        name: String,
        /// Bytes asked for.
        len: usize,
    },
    /// Too many open files in this process or system.
    #[error("too many open files")]
    TooManyFiles,
    /// The allocator has no block that large for a queue on the heap.
    #[error("cannot allocate {len} bytes for a queue on the heap")]
    OutOfMemory {
        /// Bytes asked for.
        len: usize,
    },
    /// Capacity is zero, not a power of two, or too large.
    #[error("unsupported capacity {capacity}: it must be a power of two between 1 and {max}")]
    InvalidCapacity {
        /// What was asked for.
        capacity: usize,
        /// The largest capacity accepted.
        max: usize,
    },
    /// The element type is aligned more strictly than a page: a segment is only page-aligned,
    /// so its slots could not be.
    #[error("unsupported element alignment {align}: at most {max} (the page size)")]
    UnsupportedAlignment {
        /// The element type's alignment.
        align: usize,
        /// The largest alignment accepted.
        max: usize,
    },
    /// A bound of zero, above the capacity, or set on a kind other than SPSC.
    #[error("unsupported bound {bound}: it must lie in 1..={capacity}, and differ from the capacity only for SPSC")]
    InvalidBound {
        /// What was asked for.
        bound: usize,
        /// The capacity.
        capacity: usize,
    },
    /// A wake threshold outside its range: `consumer_at` must lie in `1..=bound` and
    /// `producer_at` in `0..bound`, where the bound is the capacity unless one is set.
    #[error(
        "wake threshold {threshold} for {which} is outside {} (the queue holds at most {bound} items)",
        wake_threshold_range(.which, *.bound)
    )]
    InvalidWakeThreshold {
        /// Which threshold: `"consumer_at"` or `"producer_at"`.
        which: &'static str,
        /// The threshold.
        threshold: u32,
        /// Items the queue holds at most: its bound, or its capacity.
        bound: usize,
    },
    /// Any other operating-system error, with the call that failed.
    #[error("{call} failed: {source}")]
    Os {
        /// The system call.
        call: &'static str,
        /// The errno.
        source: io::Error,
    },
}

/// The range a wake threshold must lie in, as the error message shows it.
fn wake_threshold_range(which: &str, bound: usize) -> String {
    if which == "producer_at" {
        format!("0..={}", bound.saturating_sub(1))
    } else {
        format!("1..={bound}")
    }
}

/// Why an existing queue could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The name broke a rule.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    /// No segment of that name.
    #[error("no shared-memory segment named {0}")]
    NotFound(String),
    /// The kernel refused access.
    #[error("permission denied opening {0}")]
    PermissionDenied(String),
    /// The segment belongs to another user.
    #[error("segment {name} belongs to uid {owner}, not to this process's uid {me}")]
    ForeignOwner {
        /// Segment name.
        name: String,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// Its creator did not finish initialising it in time (or died doing so).
    #[error("segment {0} was not initialised in time (creator died or is stuck)")]
    NotInitialized(String),
    /// The first bytes are not a shm-queue header.
    #[error("segment {0} is not a shm-queue segment (bad magic)")]
    BadMagic(String),
    /// Written by another format version.
    #[error("segment format version {found}, this library reads version {expected}")]
    VersionMismatch {
        /// In the segment.
        found: u32,
        /// What we read.
        expected: u32,
    },
    /// A different ring kind.
    #[error("segment holds a {found} ring, expected {expected}")]
    KindMismatch {
        /// In the segment.
        found: String,
        /// What the caller asked for.
        expected: &'static str,
    },
    /// A different element type.
    #[error("segment holds elements of type {found}, expected {expected}")]
    TypeMismatch {
        /// In the segment (name, size, align).
        found: String,
        /// What the caller asked for.
        expected: String,
    },
    /// The file is shorter than its header claims.
    #[error("segment is {len} bytes, its header needs {needed}")]
    Truncated {
        /// The file's length.
        len: u64,
        /// The length the header implies.
        needed: u64,
    },
    /// Header fields contradict each other (capacity not a power of two, offsets off, ...).
    #[error("segment header is inconsistent: {0}")]
    LayoutMismatch(&'static str),
    /// Made by a process of another PID namespace (a container that shares `/dev/shm` but not
    /// its pids): the pids in it name other processes here, or none, so its peers' deaths
    /// could not be told. See [`PidNamespace`](crate::PidNamespace).
    #[error("segment {name} belongs to PID namespace pid:[{found}], this process is in pid:[{here}]; processes sharing a queue must share their PID namespace")]
    OtherPidNamespace {
        /// Segment name.
        name: String,
        /// Its creator's namespace.
        found: u64,
        /// Ours.
        here: u64,
    },
    /// Too many open files.
    #[error("too many open files")]
    TooManyFiles,
    /// Any other operating-system error, with the call that failed.
    #[error("{call} failed: {source}")]
    Os {
        /// The system call.
        call: &'static str,
        /// The errno.
        source: io::Error,
    },
}

/// Why an endpoint could not be attached to a queue.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttachError {
    /// The kind allows one endpoint of this role and it is taken.
    #[error("this {kind} queue already has its single {role}")]
    RoleTaken {
        /// Ring kind.
        kind: &'static str,
        /// "producer" or "consumer".
        role: &'static str,
    },
    /// The endpoint table in the header is full.
    #[error("the queue's endpoint table is full ({max} endpoints)")]
    TooManyEndpoints {
        /// Table size.
        max: usize,
    },
    /// Every endpoint of this role has already left: the queue is closed to it.
    #[error("every {role} of this queue has already detached; it is closed")]
    Closed {
        /// "producer" or "consumer".
        role: &'static str,
    },
    /// The queue is poisoned.
    #[error("the queue is poisoned")]
    Poisoned,
    /// A handover token did not match a pending handover.
    #[error("no pending handover in endpoint slot {slot}")]
    NoPendingHandover {
        /// The slot named by the token.
        slot: u32,
    },
}

/// Why a push failed; the item comes back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PushError<T> {
    /// The ring is full (only from `try_*`).
    #[error("queue is full")]
    Full(T),
    /// The ring stayed full until the deadline.
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// Every consumer has left.
    #[error("every consumer has left the queue")]
    Disconnected(T),
    /// The queue was poisoned: by [`poison`](crate::Queue::poison) (the runtime's, when its run
    /// fails), by an end dropped while its thread panicked (its stream was cut short), or by a
    /// multi-producer write chunk dropped uncommitted. Only a dead peer's poisoning is
    /// `PeerDead`; after another cause, a peer that dies later shows as this.
    #[error("the queue is poisoned")]
    Poisoned(T),
    /// A consumer process died without detaching; the queue is now poisoned.
    #[error("consumer process {pid} died without detaching")]
    PeerDead {
        /// The dead process.
        pid: u32,
        /// The item.
        item: T,
    },
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Timeout(t) | Self::Disconnected(t) | Self::Poisoned(t) => t,
            Self::PeerDead { item, .. } => item,
        }
    }

    /// The same error without its item.
    pub fn without_item(&self) -> PushError<()> {
        match self {
            Self::Full(_) => PushError::Full(()),
            Self::Timeout(_) => PushError::Timeout(()),
            Self::Disconnected(_) => PushError::Disconnected(()),
            Self::Poisoned(_) => PushError::Poisoned(()),
            Self::PeerDead { pid, .. } => PushError::PeerDead { pid: *pid, item: () },
        }
    }

    pub(crate) fn with_item<U>(self, item: U) -> PushError<U> {
        match self {
            Self::Full(_) => PushError::Full(item),
            Self::Timeout(_) => PushError::Timeout(item),
            Self::Disconnected(_) => PushError::Disconnected(item),
            Self::Poisoned(_) => PushError::Poisoned(item),
            Self::PeerDead { pid, .. } => PushError::PeerDead { pid, item },
        }
    }
}

/// Why a pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PopError {
    /// The ring is empty (only from `try_*`).
    #[error("queue is empty")]
    Empty,
    /// The ring stayed empty until the deadline.
    #[error("timed out waiting for an item")]
    Timeout,
    /// Every producer has left and the ring is drained.
    #[error("every producer has left and the queue is drained")]
    Disconnected,
    /// The queue was poisoned: by [`poison`](crate::Queue::poison) (the runtime's, when its run
    /// fails), by an end dropped while its thread panicked (its stream was cut short), or by a
    /// multi-producer write chunk dropped uncommitted. Only a dead peer's poisoning is
    /// `PeerDead`; after another cause, a peer that dies later shows as this.
    #[error("the queue is poisoned")]
    Poisoned,
    /// A producer process died without detaching; the queue is now poisoned.
    #[error("producer process {pid} died without detaching")]
    PeerDead {
        /// The dead process.
        pid: u32,
    },
}

/// Why a segment could not be removed.
#[derive(Debug, Error)]
pub enum UnlinkError {
    /// The name broke a rule.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    /// Nothing of that name.
    #[error("no shared-memory segment named {0}")]
    NotFound(String),
    /// The kernel refused.
    #[error("permission denied removing {0}")]
    PermissionDenied(String),
    /// Any other operating-system error.
    #[error("shm_unlink failed: {0}")]
    Os(#[source] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error texts are part of the interface: operators grep for them.
    #[test]
    fn display_strings_are_stable() {
        assert_eq!(PopError::Empty.to_string(), "queue is empty");
        assert_eq!(PopError::PeerDead { pid: 7 }.to_string(), "producer process 7 died without detaching");
        assert_eq!(PushError::Full(3u8).to_string(), "queue is full");
        assert_eq!(
            CreateError::InvalidCapacity { capacity: 3, max: 8 }.to_string(),
            "unsupported capacity 3: it must be a power of two between 1 and 8"
        );
        assert_eq!(
            OpenError::VersionMismatch { found: 9, expected: 1 }.to_string(),
            "segment format version 9, this library reads version 1"
        );
        assert_eq!(
            AttachError::RoleTaken { kind: "SPSC", role: "producer" }.to_string(),
            "this SPSC queue already has its single producer"
        );
    }

    #[test]
    fn push_error_gives_the_item_back() {
        assert_eq!(PushError::Disconnected(5).into_inner(), 5);
        assert_eq!(PushError::PeerDead { pid: 1, item: 6 }.into_inner(), 6);
        assert_eq!(PushError::Timeout(1).without_item(), PushError::Timeout(()));
    }
}
