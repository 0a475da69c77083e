//! Return codes, the conversion of the library's errors to them, and the per-thread message of
//! the last failure.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};

use shm_queue::{AttachError, CreateError, NameError, OpenError, PopError, PushError, UnlinkError};

/// Success.
pub const SHMQ_OK: c_int = 0;
/// `-EPERM`: the segment belongs to another user, or was made in another PID namespace.
pub const SHMQ_EPERM: c_int = -1;
/// `-ENOENT`: no segment of that name.
pub const SHMQ_ENOENT: c_int = -2;
/// `-EIO`: an internal error (a Rust panic caught at the boundary); see `shmq_last_error`.
pub const SHMQ_EIO: c_int = -5;
/// `-EAGAIN`: a `try` call found the ring full (push, reserve) or empty (pop, read); or `open`
/// found a segment whose creator has not finished initialising it within a second.
pub const SHMQ_EAGAIN: c_int = -11;
/// `-EACCES`: the kernel refused access to the name.
pub const SHMQ_EACCES: c_int = -13;
/// `-EBUSY`: the single producer (or consumer) of this kind of queue is already attached; or
/// a reserved/read chunk is outstanding on this handle (commit or release it first).
pub const SHMQ_EBUSY: c_int = -16;
/// `-EEXIST`: a segment of that name already exists.
pub const SHMQ_EEXIST: c_int = -17;
/// `-EINVAL`: a NULL or invalid argument: bad name, kind, capacity, bound, wake threshold,
/// unsupported record size, zero `max`, commit without reserve, release without read.
pub const SHMQ_EINVAL: c_int = -22;
/// `-EMFILE`: too many open files.
pub const SHMQ_EMFILE: c_int = -24;
/// `-ENOSPC`: `/dev/shm` has no room for the segment (reported at create, never as SIGBUS).
pub const SHMQ_ENOSPC: c_int = -28;
/// `-EPIPE`: the other side has left. Push: every consumer detached. Pop: every producer
/// detached and the ring is drained (end of stream). Attach: every end of that role has left.
pub const SHMQ_EPIPE: c_int = -32;
/// `-ENAMETOOLONG`: the segment name is longer than `NAME_MAX`.
pub const SHMQ_ENAMETOOLONG: c_int = -36;
/// `-EPROTO`: the segment is not what the caller expects: another kind or record size, not a
/// shm-queue segment, another format version, a truncated or inconsistent header.
pub const SHMQ_EPROTO: c_int = -71;
/// `-EUSERS`: the queue's endpoint table is full.
pub const SHMQ_EUSERS: c_int = -87;
/// `-ETIMEDOUT`: a `timeout` call waited its whole timeout.
pub const SHMQ_ETIMEDOUT: c_int = -110;
/// `-EOWNERDEAD`: a peer process died without detaching; the queue is now poisoned
/// (`shmq_stats_t.dead_peer` names it).
pub const SHMQ_EOWNERDEAD: c_int = -130;
/// `-ENOTRECOVERABLE`: the queue was poisoned (by `shmq_poison` or an abandoned
/// multi-producer reservation).
pub const SHMQ_ENOTRECOVERABLE: c_int = -131;

// The header spells the values out (Fortran has no errno.h): pin them to the platform's.
const _: () = {
    assert!(SHMQ_EPERM == -libc::EPERM);
    assert!(SHMQ_ENOENT == -libc::ENOENT);
    assert!(SHMQ_EIO == -libc::EIO);
    assert!(SHMQ_EAGAIN == -libc::EAGAIN);
    assert!(SHMQ_EACCES == -libc::EACCES);
    assert!(SHMQ_EBUSY == -libc::EBUSY);
    assert!(SHMQ_EEXIST == -libc::EEXIST);
    assert!(SHMQ_EINVAL == -libc::EINVAL);
    assert!(SHMQ_EMFILE == -libc::EMFILE);
    assert!(SHMQ_ENOSPC == -libc::ENOSPC);
    assert!(SHMQ_EPIPE == -libc::EPIPE);
    assert!(SHMQ_ENAMETOOLONG == -libc::ENAMETOOLONG);
    assert!(SHMQ_EPROTO == -libc::EPROTO);
    assert!(SHMQ_EUSERS == -libc::EUSERS);
    assert!(SHMQ_ETIMEDOUT == -libc::ETIMEDOUT);
    assert!(SHMQ_EOWNERDEAD == -libc::EOWNERDEAD);
    assert!(SHMQ_ENOTRECOVERABLE == -libc::ENOTRECOVERABLE);
};

/// A static description of each code, for `shmq_strerror`.
pub(crate) fn describe(code: c_int) -> &'static CStr {
    match code.checked_abs().map(|c| -c) {
        Some(SHMQ_OK) => c"success",
        Some(SHMQ_EPERM) => c"segment belongs to another user or PID namespace",
        Some(SHMQ_ENOENT) => c"no such shared-memory segment",
        Some(SHMQ_EIO) => c"internal error in shm-queue (see shmq_last_error)",
        Some(SHMQ_EAGAIN) => c"would block: queue full (push) or empty (pop), or segment not initialised yet (open)",
        Some(SHMQ_EACCES) => c"permission denied",
        Some(SHMQ_EBUSY) => c"role already taken, or a chunk is outstanding on this handle",
        Some(SHMQ_EEXIST) => c"a segment of that name already exists",
        Some(SHMQ_EINVAL) => c"invalid argument",
        Some(SHMQ_EMFILE) => c"too many open files",
        Some(SHMQ_ENOSPC) => c"no space left in /dev/shm",
        Some(SHMQ_EPIPE) => c"the other side has left the queue (closed)",
        Some(SHMQ_ENAMETOOLONG) => c"segment name too long",
        Some(SHMQ_EPROTO) => c"segment does not match: kind, record size, format or layout",
        Some(SHMQ_EUSERS) => c"the queue's endpoint table is full",
        Some(SHMQ_ETIMEDOUT) => c"timed out",
        Some(SHMQ_EOWNERDEAD) => c"a peer process died without detaching; the queue is poisoned",
        Some(SHMQ_ENOTRECOVERABLE) => c"the queue is poisoned",
        _ => c"operating-system error (see shmq_last_error)",
    }
}

/// Why a call failed: its return code and, for the rarer failures, a message with details.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: c_int,
    pub detail: Option<String>,
}

impl Failure {
    /// A failure described by its code alone (the hot paths: full, empty, timed out).
    pub fn code(code: c_int) -> Self {
        Self { code, detail: None }
    }

    /// A failure with a message.
    pub fn new(code: c_int, detail: impl Into<String>) -> Self {
        Self { code, detail: Some(detail.into()) }
    }

    /// `-EINVAL` with a message.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(SHMQ_EINVAL, detail)
    }

    /// A panic caught at the boundary.
    pub fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown payload".to_owned());
        Self::new(SHMQ_EIO, format!("internal panic in shm-queue-ffi: {what}"))
    }

    /// Stores the message as this thread's last error and returns the code. During the
    /// thread's (or the process's) exit its storage may be gone: then only the code is
    /// returned (`with` would panic, and a panic here aborts the C program).
    pub fn record(self) -> c_int {
        let code = self.code;
        let _ = LAST_ERROR.try_with(|last| {
            let mut last = last.borrow_mut();
            last.code = code;
            last.detail = self.detail.map(|d| CString::new(d.replace('\0', "\\0")).unwrap_or_default());
        });
        code
    }
}

/// The last failure of this thread.
struct LastError {
    code: c_int,
    detail: Option<CString>,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const { RefCell::new(LastError { code: SHMQ_OK, detail: None }) };
}

/// The message of this thread's last failure: its details if it had some, else the code's
/// description. The pointer stays valid until the next failing call on this thread.
pub(crate) fn last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|last| {
            let last = last.borrow();
            match &last.detail {
                Some(detail) => detail.as_ptr(),
                None if last.code == SHMQ_OK => c"".as_ptr(),
                None => describe(last.code).as_ptr(),
            }
        })
        .unwrap_or(c"no message: this thread is exiting".as_ptr())
}

/// The code of this thread's last failure (0 if none yet).
pub(crate) fn last_error_code() -> c_int {
    LAST_ERROR.try_with(|last| last.borrow().code).unwrap_or(SHMQ_OK)
}

fn os_code(error: &std::io::Error) -> c_int {
    error.raw_os_error().filter(|&e| e > 0).map_or(SHMQ_EIO, |e| -e)
}

fn name_code(error: &NameError) -> c_int {
    match error {
        NameError::TooLong { .. } => SHMQ_ENAMETOOLONG,
        _ => SHMQ_EINVAL,
    }
}

impl From<CreateError> for Failure {
    fn from(error: CreateError) -> Self {
        let code = match &error {
            CreateError::InvalidName(e) => name_code(e),
            CreateError::AlreadyExists(_) => SHMQ_EEXIST,
            CreateError::PermissionDenied(_) => SHMQ_EACCES,
            CreateError::NoSpace { .. } | CreateError::OutOfMemory { .. } => SHMQ_ENOSPC,
            CreateError::TooManyFiles => SHMQ_EMFILE,
            CreateError::InvalidCapacity { .. }
            | CreateError::InvalidBound { .. }
            | CreateError::InvalidWakeThreshold { .. }
            | CreateError::UnsupportedAlignment { .. } => SHMQ_EINVAL,
            CreateError::Os { source, .. } => os_code(source),
        };
        Self::new(code, error.to_string())
    }
}

impl From<OpenError> for Failure {
    fn from(error: OpenError) -> Self {
        let code = match &error {
            OpenError::InvalidName(e) => name_code(e),
            OpenError::NotFound(_) => SHMQ_ENOENT,
            OpenError::PermissionDenied(_) => SHMQ_EACCES,
            OpenError::ForeignOwner { .. } | OpenError::OtherPidNamespace { .. } => SHMQ_EPERM,
            OpenError::NotInitialized(_) => SHMQ_EAGAIN,
            OpenError::BadMagic(_)
            | OpenError::VersionMismatch { .. }
            | OpenError::KindMismatch { .. }
            | OpenError::TypeMismatch { .. }
            | OpenError::Truncated { .. }
            | OpenError::LayoutMismatch(_) => SHMQ_EPROTO,
            OpenError::TooManyFiles => SHMQ_EMFILE,
            OpenError::Os { source, .. } => os_code(source),
        };
        Self::new(code, error.to_string())
    }
}

impl From<AttachError> for Failure {
    fn from(error: AttachError) -> Self {
        let code = match &error {
            AttachError::RoleTaken { .. } => SHMQ_EBUSY,
            AttachError::TooManyEndpoints { .. } => SHMQ_EUSERS,
            AttachError::Closed { .. } => SHMQ_EPIPE,
            AttachError::Poisoned => SHMQ_ENOTRECOVERABLE,
            AttachError::NoPendingHandover { .. } => SHMQ_EINVAL,
        };
        Self::new(code, error.to_string())
    }
}

impl<T> From<PushError<T>> for Failure {
    fn from(error: PushError<T>) -> Self {
        match error {
            PushError::Full(_) => Self::code(SHMQ_EAGAIN),
            PushError::Timeout(_) => Self::code(SHMQ_ETIMEDOUT),
            PushError::Disconnected(_) => Self::code(SHMQ_EPIPE),
            PushError::Poisoned(_) => Self::code(SHMQ_ENOTRECOVERABLE),
            PushError::PeerDead { pid, .. } => {
                Self::new(SHMQ_EOWNERDEAD, format!("consumer process {pid} died without detaching"))
            }
        }
    }
}

impl From<PopError> for Failure {
    fn from(error: PopError) -> Self {
        match error {
            PopError::Empty => Self::code(SHMQ_EAGAIN),
            PopError::Timeout => Self::code(SHMQ_ETIMEDOUT),
            PopError::Disconnected => Self::code(SHMQ_EPIPE),
            PopError::Poisoned => Self::code(SHMQ_ENOTRECOVERABLE),
            PopError::PeerDead { .. } => Self::new(SHMQ_EOWNERDEAD, error.to_string()),
        }
    }
}

impl From<UnlinkError> for Failure {
    fn from(error: UnlinkError) -> Self {
        let code = match &error {
            UnlinkError::InvalidName(e) => name_code(e),
            UnlinkError::NotFound(_) => SHMQ_ENOENT,
            UnlinkError::PermissionDenied(_) => SHMQ_EACCES,
            UnlinkError::Os(source) => os_code(source),
        };
        Self::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_description() {
        let codes = [
            SHMQ_EPERM,
            SHMQ_ENOENT,
            SHMQ_EIO,
            SHMQ_EAGAIN,
            SHMQ_EACCES,
            SHMQ_EBUSY,
            SHMQ_EEXIST,
            SHMQ_EINVAL,
            SHMQ_EMFILE,
            SHMQ_ENOSPC,
            SHMQ_EPIPE,
            SHMQ_ENAMETOOLONG,
            SHMQ_EPROTO,
            SHMQ_EUSERS,
            SHMQ_ETIMEDOUT,
            SHMQ_EOWNERDEAD,
            SHMQ_ENOTRECOVERABLE,
        ];
        let unknown = describe(-9999);
        let mut seen = std::collections::HashSet::new();
        for code in codes {
            assert_ne!(describe(code), unknown, "code {code}");
            assert_eq!(describe(code), describe(-code), "positive spelling of {code}");
            assert!(seen.insert(describe(code)), "code {code} shares its text");
        }
        assert_eq!(describe(c_int::MIN), unknown);
    }

    #[test]
    fn last_error_keeps_details_until_the_next_failure() {
        assert_eq!(Failure::new(SHMQ_EPROTO, "kind mismatch\0x").record(), SHMQ_EPROTO);
        // SAFETY: the pointer is valid until the next failure on this thread.
        let text = unsafe { CStr::from_ptr(last_error_message()) };
        assert_eq!(text.to_str().unwrap(), "kind mismatch\\0x");
        assert_eq!(Failure::code(SHMQ_EAGAIN).record(), SHMQ_EAGAIN);
        // SAFETY: as above.
        let text = unsafe { CStr::from_ptr(last_error_message()) };
        assert_eq!(text, describe(SHMQ_EAGAIN));
        assert_eq!(last_error_code(), SHMQ_EAGAIN);
    }
}
