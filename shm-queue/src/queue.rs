//! A queue: a ring in a segment (or on the heap), from which ends are attached.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use crate::attached::{wake_everyone, Attached, Handover};
use crate::endpoint::{self, Role};
use crate::error::{AttachError, CreateError, OpenError};
use crate::fingerprint::TypeFingerprint;
use crate::header::{check_capacity, check_element, Header, Layout};
use crate::kind::Kind;
use crate::name::ShmName;
use crate::pid_namespace::PidNamespace;
use crate::region::Region;
use crate::ring::RawRing;
use crate::stats::QueueStats;
use crate::wake::WakePolicy;
use crate::{Consumer, Producer};

/// How a new queue is made.
///
/// ```
/// use shm_queue::{QueueOptions, WakePolicy};
/// let options = QueueOptions::new(1024).wake(WakePolicy::at_edges(1024));
/// assert_eq!(options.capacity, 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// Slots: a power of two in `1..=2^30` (other values are refused, not rounded).
    pub capacity: usize,
    /// Items allowed in flight (`None`: the capacity). SPSC only may hold fewer than its
    /// capacity, so a queue can have any depth, such as the 10 of a classic bounded queue.
    pub bound: Option<usize>,
    /// When a publishing side wakes the other.
    pub wake: WakePolicy,
    /// How often a sleeper re-checks for dead peers (default 100 ms, clamped to 1 ms..60 s; a
    /// dead peer is reported within about this long).
    pub recheck: Duration,
}

impl QueueOptions {
    /// `capacity` slots, eager wake-ups, 100 ms re-checks.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, bound: None, wake: WakePolicy::Eager, recheck: Duration::from_millis(100) }
    }

    /// An SPSC queue holding at most `depth` items (any depth ≥ 1): capacity is `depth`
    /// rounded up to a power of two, and the bound is `depth`.
    ///
    /// ```
    /// let options = shm_queue::QueueOptions::with_depth(10);
    /// assert_eq!((options.capacity, options.bound), (16, Some(10)));
    /// ```
    pub fn with_depth(depth: usize) -> Self {
        // A depth with no power of two above it keeps its own value, which `create` refuses by name.
        let mut options = Self::new(depth.max(1).checked_next_power_of_two().unwrap_or(depth));
        options.bound = Some(depth);
        options
    }

    /// Items allowed in flight, at most the capacity (SPSC only below it).
    pub fn bound(mut self, bound: usize) -> Self {
        self.bound = Some(bound);
        self
    }

    fn bound_or_capacity(&self) -> usize {
        self.bound.unwrap_or(self.capacity)
    }

    /// Sets the wake policy.
    pub fn wake(mut self, wake: WakePolicy) -> Self {
        self.wake = wake;
        self
    }

    /// Sets the re-check interval (clamped to 1 ms..60 s).
    pub fn recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    fn recheck_ms(&self) -> u32 {
        self.recheck.as_millis().clamp(1, 60_000) as u32
    }

    fn validate(&self, kind: crate::KindId) -> Result<(), CreateError> {
        check_capacity(self.capacity)?;
        let bound = self.bound_or_capacity();
        if bound == 0 || bound > self.capacity || (kind != crate::KindId::Spsc && bound != self.capacity) {
            return Err(CreateError::InvalidBound { bound, capacity: self.capacity });
        }
        if let WakePolicy::Batched { consumer_at, producer_at } = self.wake {
            if consumer_at == 0 || consumer_at as usize > bound {
                return Err(CreateError::InvalidWakeThreshold { which: "consumer_at", threshold: consumer_at, bound });
            }
            if producer_at as usize >= bound {
                return Err(CreateError::InvalidWakeThreshold { which: "producer_at", threshold: producer_at, bound });
            }
        }
        Ok(())
    }
}

/// A bounded queue of `T` of kind `K` ([`Spsc`](crate::Spsc), [`Mpsc`](crate::Mpsc),
/// [`Spmc`](crate::Spmc) or [`Mpmc`](crate::Mpmc)), from which [`Producer`]s and
/// [`Consumer`]s are attached.
///
/// A queue made by [`create`](Self::create) owns its name and removes it when dropped (unless
/// [`keep_name`](Self::keep_name) is called); one made by [`open`](Self::open) does not.
/// Mappings outlive the name: processes attached keep working after the unlink.
///
/// ```
/// use shm_queue::{Queue, Spsc};
/// let name = format!("/shmpipe-doc-queue-{}", std::process::id());
/// let queue = Queue::<u64, Spsc>::create(&name, 8)?;
/// let mut tx = queue.producer()?;
/// let mut rx = Queue::<u64, Spsc>::open(&name)?.consumer()?;
/// tx.push(7)?;
/// assert_eq!(rx.pop()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T: Pod, K: Kind = crate::Spsc> {
    ring: RawRing<T>,
    name: Option<Arc<str>>,
    wake: WakePolicy,
    recheck: Duration,
    unlink_on_drop: bool,
    /// The process that made this handle. A copy inherited through `fork` is not the name's
    /// owner: dropping it in the child must not unlink the name under the parent's feet (as
    /// `Attached::drop` does not count out an inherited end).
    owner_pid: u32,
    _kind: PhantomData<K>,
}

impl<T: Pod, K: Kind> fmt::Debug for Queue<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("kind", &K::ID)
            .field("name", &self.name)
            .field("capacity", &self.ring.capacity())
            .finish_non_exhaustive()
    }
}

impl<T: Pod, K: Kind> Queue<T, K> {
    /// A header records the element's size in 32 bits; a larger type would pass the size
    /// check of [`open`](Self::open) with the size cut short and then index past the segment.
    /// Refused at compile time, where the queue's type is named:
    ///
    /// ```compile_fail,E0080
    /// #[derive(Clone, Copy)]
    /// #[repr(C)]
    /// struct Huge([u8; 1 << 32]);
    /// // SAFETY (of the example): bytes only, no padding.
    /// unsafe impl bytemuck::Zeroable for Huge {}
    /// // SAFETY (of the example): as above.
    /// unsafe impl bytemuck::Pod for Huge {}
    /// let _ = shm_queue::Queue::<Huge, shm_queue::Spsc>::open("/too-large");
    /// ```
    const ELEMENT_SIZE_FITS_THE_HEADER: () =
        assert!(size_of::<T>() <= u32::MAX as usize, "shm-queue elements must be smaller than 4 GiB");

    /// Creates a segment `name` holding a queue of `capacity` slots, with default options.
    ///
    /// # Errors
    /// See [`create_with`](Self::create_with).
    pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
        Self::create_with(name, QueueOptions::new(capacity))
    }

    /// Creates a segment `name` (`O_CREAT | O_EXCL`, mode 0600), reserves its pages, and
    /// initialises a queue in it.
    ///
    /// # Errors
    /// `InvalidName`, `AlreadyExists`, `PermissionDenied`, `NoSpace` (a full `/dev/shm` is
    /// reported here, never as SIGBUS later), `InvalidCapacity`, `InvalidBound`,
    /// `InvalidWakeThreshold`, `UnsupportedAlignment`.
    pub fn create_with(name: &str, options: QueueOptions) -> Result<Self, CreateError> {
        let shm_name = ShmName::new(name)?;
        options.validate(K::ID)?;
        let (header, layout) = Self::header(&options)?;
        let region = crate::segment::create(&shm_name, header, layout, K::ID, options.capacity)?;
        Ok(Self::from_region(region, layout, &options, Some(name.into()), true))
    }

    /// The bytes of shared memory a queue made with `options` takes: the length of its segment,
    /// all of whose pages [`create_with`](Self::create_with) reserves at once. For planning
    /// before making many queues, or large ones.
    ///
    /// ```
    /// use shm_queue::{Queue, QueueOptions, Spsc};
    /// let len = Queue::<u64, Spsc>::segment_len(&QueueOptions::with_depth(1000))?;
    /// assert!(len >= 1024 * 8, "1,024 slots of 8 bytes, and a header");
    /// # Ok::<(), shm_queue::CreateError>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidCapacity`, `InvalidBound`, `InvalidWakeThreshold`, `UnsupportedAlignment`, as
    /// `create_with`.
    pub fn segment_len(options: &QueueOptions) -> Result<usize, CreateError> {
        options.validate(K::ID)?;
        Ok(Self::header(options)?.1.total_len)
    }

    /// A queue on the heap with the same layout and algorithm, for threads of one process.
    ///
    /// # Errors
    /// `InvalidCapacity`, `InvalidBound`, `InvalidWakeThreshold`, `UnsupportedAlignment`,
    /// `OutOfMemory`.
    pub fn on_heap(options: QueueOptions) -> Result<Self, CreateError> {
        options.validate(K::ID)?;
        let (header, layout) = Self::header(&options)?;
        let region = Region::try_heap(header, layout, K::ID, options.capacity)
            .ok_or(CreateError::OutOfMemory { len: layout.total_len })?;
        Ok(Self::from_region(region, layout, &options, None, false))
    }

    fn header(options: &QueueOptions) -> Result<(Header, Layout), CreateError> {
        let max_align = crate::header::page_size();
        if align_of::<T>() > max_align {
            return Err(CreateError::UnsupportedAlignment { align: align_of::<T>(), max: max_align });
        }
        let element = TypeFingerprint::of::<T>();
        let layout = Layout::compute(K::ID, options.capacity, size_of::<T>(), align_of::<T>())
            .ok_or(CreateError::InvalidCapacity { capacity: options.capacity, max: crate::header::MAX_CAPACITY })?;
        let header = Header::new(
            K::ID,
            options.capacity,
            options.bound_or_capacity(),
            &element,
            options.wake,
            options.recheck_ms(),
            layout,
        );
        Ok((header, layout))
    }

    fn from_region(
        region: Region,
        layout: Layout,
        options: &QueueOptions,
        name: Option<Arc<str>>,
        unlink_on_drop: bool,
    ) -> Self {
        let () = Self::ELEMENT_SIZE_FITS_THE_HEADER;
        let (capacity, bound) = (options.capacity, options.bound_or_capacity());
        // SAFETY: the region was initialised (by us or, for `open`, by a creator whose header
        // we validated) with exactly this layout, kind, capacity and bound.
        let ring = unsafe { RawRing::new(Arc::new(region), layout, K::ID, capacity, bound) };
        let owner_pid = std::process::id();
        // The same clamped interval the header gives those who open the queue: a zero one
        // would make every sleep return at once.
        let recheck = Duration::from_millis(u64::from(options.recheck_ms()));
        Self { ring, name, wake: options.wake, recheck, unlink_on_drop, owner_pid, _kind: PhantomData }
    }

    /// Maps an existing segment and checks that it holds a queue of kind `K` and element `T`.
    /// Waits up to a second for a racing creator to finish initialising it.
    ///
    /// `T` is checked by size, alignment and [`std::any::type_name`] (see
    /// [`TypeFingerprint`]), module path included: two programs share a queue of their own
    /// struct only if both take it from one crate, built by the same compiler (the text of
    /// `type_name` is not promised to stay the same across compiler versions).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `ForeignOwner`, `NotInitialized`, `BadMagic`,
    /// `VersionMismatch`, `KindMismatch`, `TypeMismatch`, `Truncated`, `LayoutMismatch`,
    /// `OtherPidNamespace`.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        let shm_name = ShmName::new(name)?;
        let opened = crate::segment::open(&shm_name)?;
        // Its pids are judged in our /proc: from another namespace they would name strangers.
        if PidNamespace::is_foreign(opened.info.pid_namespace) {
            let here = PidNamespace::current_raw();
            return Err(OpenError::OtherPidNamespace { name: name.into(), found: opened.info.pid_namespace, here });
        }
        if opened.info.kind != K::ID {
            return Err(OpenError::KindMismatch { found: opened.info.kind.to_string(), expected: K::ID.as_str() });
        }
        check_element(&opened.info.element, &TypeFingerprint::of::<T>())?;
        let recheck = Duration::from_millis(u64::from(opened.info.recheck_ms));
        Ok(Self::from_region(
            opened.region,
            opened.layout,
            &QueueOptions {
                capacity: opened.info.capacity,
                bound: Some(opened.info.bound),
                wake: opened.info.wake,
                recheck,
            },
            Some(name.into()),
            false,
        ))
    }

    fn attached(&self, slot: u32, role: Role) -> Attached<T> {
        Attached {
            ring: self.ring.clone(),
            slot,
            role,
            wake: self.wake,
            recheck: self.recheck,
            name: self.name.clone(),
            detach_on_drop: true,
        }
    }

    /// Attaches a producer, owned by this process.
    ///
    /// # Errors
    /// `RoleTaken` for a second producer of a single-producer kind, `Closed` after every
    /// producer left, `Poisoned`, `TooManyEndpoints`.
    pub fn producer(&self) -> Result<Producer<T, K>, AttachError> {
        let slot = endpoint::attach(self.ring.control(), K::ID, Role::Producer)?;
        Ok(Producer::new(self.attached(slot, Role::Producer)))
    }

    /// Attaches a consumer, owned by this process.
    ///
    /// # Errors
    /// As for [`producer`](Self::producer).
    pub fn consumer(&self) -> Result<Consumer<T, K>, AttachError> {
        let slot = endpoint::attach(self.ring.control(), K::ID, Role::Consumer)?;
        Ok(Consumer::new(self.attached(slot, Role::Consumer)))
    }

    /// Takes over a producer that another process gave up with
    /// [`Producer::into_handover`].
    ///
    /// # Errors
    /// `NoPendingHandover` when the token names no handed-over producer, `Poisoned`.
    pub fn adopt_producer(&self, token: Handover) -> Result<Producer<T, K>, AttachError> {
        if token.role != Role::Producer as u32 {
            return Err(AttachError::NoPendingHandover { slot: token.slot });
        }
        endpoint::adopt(self.ring.control(), token.slot, Role::Producer)?;
        Ok(Producer::new(self.attached(token.slot, Role::Producer)))
    }

    /// Takes over a consumer handed over with [`Consumer::into_handover`].
    ///
    /// # Errors
    /// As for [`adopt_producer`](Self::adopt_producer).
    pub fn adopt_consumer(&self, token: Handover) -> Result<Consumer<T, K>, AttachError> {
        if token.role != Role::Consumer as u32 {
            return Err(AttachError::NoPendingHandover { slot: token.slot });
        }
        endpoint::adopt(self.ring.control(), token.slot, Role::Consumer)?;
        Ok(Consumer::new(self.attached(token.slot, Role::Consumer)))
    }

    /// The segment's name (`None` on the heap).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Items allowed in flight (the capacity unless a smaller bound was set).
    pub fn bound(&self) -> usize {
        self.ring.bound()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> QueueStats {
        QueueStats::read(self.ring.control(), K::ID, self.ring.capacity())
    }

    /// Marks the queue broken and wakes every sleeper: every end then fails with `Poisoned`.
    pub fn poison(&self) {
        endpoint::poison(self.ring.control(), None);
        wake_everyone(self.ring.control());
    }

    /// Keeps the name in `/dev/shm` when this handle is dropped (someone else will unlink it,
    /// for example the runtime's cleanup).
    pub fn keep_name(&mut self) {
        self.unlink_on_drop = false;
    }
}

impl<T: Pod, K: Kind> Drop for Queue<T, K> {
    fn drop(&mut self) {
        // Only in the process that made the handle: see `owner_pid`.
        if self.unlink_on_drop && std::process::id() == self.owner_pid {
            if let Some(name) = &self.name {
                // Already gone is fine: someone cleaned up before us.
                let _ = crate::segment::unlink(name);
            }
        }
    }
}
