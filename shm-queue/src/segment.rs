//! POSIX shared-memory segments: `shm_open` + `ftruncate` + `posix_fallocate` + `mmap`.

use std::io;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::error::{CreateError, OpenError, UnlinkError};
use crate::header::{Header, Layout, INIT_READY};
use crate::kind::KindId;
use crate::name::ShmName;
use crate::region::{initialise, Region};

/// How long an opener waits for a racing creator to finish initialising a segment.
const INIT_WAIT: Duration = Duration::from_secs(1);

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// Closes a descriptor when dropped: every exit path of create/open closes it.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn map(fd: &Fd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh mapping at a kernel-chosen address; fd is open read-write.
    let ptr =
        unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.0, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(NonNull::new(ptr.cast()).expect("mmap never returns null on success"))
}

/// A named POSIX shared-memory segment, mapped read-write and shared. Unmapped on drop; the
/// name stays until [`unlink`]. Queues live in segments; the runtime keeps its tables in them.
///
/// ```
/// use shm_queue::Segment;
/// let name = format!("/shmpipe-doc-segment-{}", std::process::id());
/// let seg = Segment::create(&name, 4096)?;
/// assert_eq!(seg.len(), 4096);
/// let again = Segment::open(&name)?;
/// assert_eq!(again.len(), 4096);
/// shm_queue::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Segment {
    base: NonNull<u8>,
    len: usize,
    name: ShmName,
}

// SAFETY: a Segment owns its mapping; what lives in it is shared through atomics by its users.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` exposes only the address and length.
unsafe impl Sync for Segment {}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("name", &self.name).field("len", &self.len).finish()
    }
}

impl Segment {
    /// Creates `name` with `O_CREAT | O_EXCL`, mode 0600, sizes it to `len` bytes, reserves
    /// its pages (so a full `/dev/shm` is an error here, never a SIGBUS later), and maps it.
    /// The memory reads as zeros. On failure nothing is left behind.
    ///
    /// # Errors
    /// `InvalidName`, `AlreadyExists`, `PermissionDenied`, `NoSpace`, `TooManyFiles`, `Os`.
    pub fn create(name: &str, len: usize) -> Result<Self, CreateError> {
        let name = ShmName::new(name)?;
        let len = len.max(1);
        let cname = name.to_cstring();
        // SAFETY: cname is a valid C string.
        let fd = unsafe {
            libc::shm_open(cname.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC, 0o600)
        };
        if fd < 0 {
            let err = errno();
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) => CreateError::AlreadyExists(name.to_string()),
                Some(libc::EACCES | libc::EPERM) => CreateError::PermissionDenied(name.to_string()),
                Some(libc::EMFILE | libc::ENFILE) => CreateError::TooManyFiles,
                Some(libc::ENOSPC) => CreateError::NoSpace { name: name.to_string(), len },
                _ => CreateError::Os { call: "shm_open", source: err },
            });
        }
        let fd = Fd(fd);
        match size_and_map(&fd, &name, len) {
            Ok(base) => Ok(Self { base, len, name }),
            Err(e) => {
                // SAFETY: cname is a valid C string; we created this name a moment ago.
                unsafe { libc::shm_unlink(cname.as_ptr()) };
                Err(e)
            }
        }
    }

    /// Maps an existing segment whole. Waits up to a second for a racing creator to size it,
    /// and refuses a segment owned by another user.
    ///
    /// # Errors
    /// `InvalidName`, `NotFound`, `PermissionDenied`, `ForeignOwner`, `NotInitialized` (still
    /// empty after the wait), `TooManyFiles`, `Os`.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::open_within(name, Instant::now() + INIT_WAIT)
    }

    /// [`open`](Self::open), waiting for a racing creator until `deadline` at most.
    pub(crate) fn open_within(name: &str, deadline: Instant) -> Result<Self, OpenError> {
        let name = ShmName::new(name)?;
        let cname = name.to_cstring();
        // SAFETY: cname is a valid C string.
        let fd = unsafe { libc::shm_open(cname.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) };
        if fd < 0 {
            let err = errno();
            return Err(match err.raw_os_error() {
                Some(libc::ENOENT) => OpenError::NotFound(name.to_string()),
                Some(libc::EACCES | libc::EPERM) => OpenError::PermissionDenied(name.to_string()),
                Some(libc::EMFILE | libc::ENFILE) => OpenError::TooManyFiles,
                _ => OpenError::Os { call: "shm_open", source: err },
            });
        }
        let fd = Fd(fd);
        let stat = loop {
            let stat = fstat(&fd)?;
            if stat.st_size > 0 {
                break stat;
            }
            if Instant::now() >= deadline {
                return Err(OpenError::NotInitialized(name.to_string()));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if stat.st_uid != me {
            return Err(OpenError::ForeignOwner { name: name.to_string(), owner: stat.st_uid, me });
        }
        let len = usize::try_from(stat.st_size).map_err(|_| OpenError::LayoutMismatch("file too large"))?;
        let base = map(&fd, len).map_err(|source| OpenError::Os { call: "mmap", source })?;
        Ok(Self { base, len, name })
    }

    /// The start of the mapping (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: segments hold at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: our own mapping; whoever borrowed from it holds the Segment alive.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Creates a segment and initialises a ring in it.
pub(crate) fn create(
    name: &ShmName,
    header: Header,
    layout: Layout,
    kind: KindId,
    capacity: usize,
) -> Result<Region, CreateError> {
    let segment = Segment::create(name.as_str(), layout.total_len)?;
    let base = segment.base;
    // SAFETY: a fresh, zero-filled mapping of total_len bytes that no opener reads before
    // `initialise` publishes INIT_READY.
    unsafe { initialise(base, header, layout, kind, capacity) };
    Ok(Region::from_segment(segment))
}

fn size_and_map(fd: &Fd, name: &ShmName, len: usize) -> Result<NonNull<u8>, CreateError> {
    let no_space = || CreateError::NoSpace { name: name.to_string(), len };
    // Both calls are retried on EINTR: kernels before 5.18 abandon a tmpfs fallocate for any
    // pending signal (SA_RESTART or not), and a runtime handling SIGCHLD gets one whenever a
    // child ends. What was reserved before the interruption stays reserved.
    let truncated = loop {
        // SAFETY: fd is open for writing.
        if unsafe { libc::ftruncate(fd.0, len as libc::off_t) } == 0 {
            break Ok(());
        }
        let err = errno();
        if err.raw_os_error() != Some(libc::EINTR) {
            break Err(err);
        }
    };
    if let Err(err) = truncated {
        return Err(match err.raw_os_error() {
            Some(libc::ENOSPC | libc::EFBIG) => no_space(),
            _ => CreateError::Os { call: "ftruncate", source: err },
        });
    }
    // Reserve the pages now: on a full tmpfs this fails with ENOSPC here, instead of the first
    // touch of an unbacked page raising SIGBUS in whichever process writes it.
    let rc = loop {
        // SAFETY: fd is open for writing; posix_fallocate returns the error number directly.
        let rc = unsafe { libc::posix_fallocate(fd.0, 0, len as libc::off_t) };
        if rc != libc::EINTR {
            break rc;
        }
    };
    if rc != 0 {
        return Err(match rc {
            libc::ENOSPC | libc::EFBIG => no_space(),
            _ => CreateError::Os { call: "posix_fallocate", source: io::Error::from_raw_os_error(rc) },
        });
    }
    map(fd, len).map_err(|source| match source.raw_os_error() {
        Some(libc::ENOMEM) => no_space(),
        _ => CreateError::Os { call: "mmap", source },
    })
}

/// A mapped, initialised segment and its validated header.
pub(crate) struct Opened {
    pub region: Region,
    pub info: crate::header::HeaderInfo,
    pub layout: Layout,
}

/// Opens and validates an existing queue segment (any kind, any element type), waiting up to a
/// second for a racing creator to finish initialising it.
pub(crate) fn open(name: &ShmName) -> Result<Opened, OpenError> {
    open_within(name, Instant::now() + INIT_WAIT)
}

/// [`open`], waiting for a racing creator (to size the segment, then to initialise it) until
/// `deadline` at most (now: a segment not initialised yet is `NotInitialized` at once).
pub(crate) fn open_within(name: &ShmName, deadline: Instant) -> Result<Opened, OpenError> {
    let segment = Segment::open_within(name.as_str(), deadline)?;
    let header_len = std::mem::size_of::<Header>();
    if segment.len() < header_len {
        return Err(OpenError::Truncated { len: segment.len() as u64, needed: header_len as u64 });
    }
    let file_len = segment.len() as u64;
    let header_ptr = segment.as_ptr().cast::<Header>();
    loop {
        // SAFETY: the mapping holds at least a Header (checked above) and is page-aligned.
        let state = unsafe { &(*header_ptr).init_state }.load(std::sync::atomic::Ordering::Acquire);
        if state == INIT_READY {
            break;
        }
        // SAFETY: in bounds as above; a plain u64 read.
        let magic = unsafe { std::ptr::read_volatile(header_ptr.cast::<u64>()) };
        if magic != 0 && magic != crate::header::MAGIC {
            // Not ours, and not one being initialised (that shows zeros or our magic).
            return Err(OpenError::BadMagic(name.to_string()));
        }
        if Instant::now() >= deadline {
            // Never READY: a creator that died mid-way, or not one of our segments at all.
            // SAFETY: in bounds as above; a plain u64 read.
            let magic = unsafe { std::ptr::read_volatile(header_ptr.cast::<u64>()) };
            return Err(if magic == crate::header::MAGIC {
                OpenError::NotInitialized(name.to_string())
            } else {
                OpenError::BadMagic(name.to_string())
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Copy the header out and validate the copy: another process may scribble on the original.
    // SAFETY: in bounds and aligned (above); Header is plain integers, so any bits are valid.
    let copy: Header = unsafe { std::ptr::read_volatile(header_ptr) };
    let (info, layout) = copy.validate(file_len).map_err(|e| match e {
        OpenError::BadMagic(_) => OpenError::BadMagic(name.to_string()),
        other => other,
    })?;
    Ok(Opened { region: Region::from_segment(segment), info, layout })
}

fn fstat(fd: &Fd) -> Result<libc::stat, OpenError> {
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; stat is a valid out-pointer.
    if unsafe { libc::fstat(fd.0, &mut stat) } != 0 {
        return Err(OpenError::Os { call: "fstat", source: errno() });
    }
    Ok(stat)
}

/// Removes a segment's name. Processes that have it mapped keep their mapping; the memory is
/// freed when the last of them unmaps.
///
/// # Errors
/// [`UnlinkError::NotFound`] when there is no such segment, and the other variants for invalid
/// names and refused permissions.
///
/// ```
/// let err = shm_queue::unlink("/shmpipe-doc-no-such-segment").unwrap_err();
/// assert!(matches!(err, shm_queue::UnlinkError::NotFound(_)));
/// ```
pub fn unlink(name: &str) -> Result<(), UnlinkError> {
    let name = ShmName::new(name)?;
    let cname = name.to_cstring();
    // SAFETY: cname is a valid C string.
    if unsafe { libc::shm_unlink(cname.as_ptr()) } != 0 {
        let err = errno();
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) => UnlinkError::NotFound(name.to_string()),
            Some(libc::EACCES | libc::EPERM) => UnlinkError::PermissionDenied(name.to_string()),
            _ => UnlinkError::Os(err),
        });
    }
    Ok(())
}

/// The names (with their leading `/`) of every entry in `/dev/shm` that starts with `prefix`
/// (given with or without its leading `/`).
///
/// # Errors
/// When `/dev/shm` cannot be read.
pub fn list(prefix: &str) -> io::Result<Vec<String>> {
    let prefix = prefix.strip_prefix('/').unwrap_or(prefix);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let file_name = entry?.file_name();
        if let Some(s) = file_name.to_str() {
            if s.starts_with(prefix) {
                names.push(format!("/{s}"));
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Where Linux keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";
