//! The fork server's table of its living children, in memory that its children do not inherit.
//!
//! A fork shares every page of the server with the child, copy-on-write: a page the server
//! writes afterwards is copied, and the old version stays mapped in the children forked since.
//! A `HashMap` on the heap took ~2 such copies per fork, and left ~2 pages per stage that the
//! kernel files under the server's memory, where every reverse-mapping walk over them (page
//! reclaim, DAMON's access checks) visits every stage of the run: with 9,929 stages alive,
//! DAMON spent 0.4 s of CPU on them per run. This table lives in private anonymous mappings
//! marked `MADV_DONTFORK`, so a child never maps it, and the server's writes copy nothing.

use crate::error::RuntimeError;
use crate::table::{StageId, MAX_STAGES};

/// Pids index the table directly, up to Linux's limit. Reserved, not committed: only the pages
/// around the pids in use are ever touched.
const PID_LIMIT: usize = crate::process::PID_LIMIT as usize;

/// Living children: pid → stage, and the pids densely for scans. O(1) insert, lookup, removal.
pub(crate) struct Children {
    /// Indexed by pid: the stage in the high 32 bits, its position in `live` plus one in the low
    /// 32 (0: not a child of ours).
    by_pid: DontForkArray<u64>,
    /// The living children's pids, `len` of them.
    live: DontForkArray<libc::pid_t>,
    len: usize,
}

impl Children {
    /// An empty table, able to hold a child for every stage a run can have.
    pub fn new() -> Result<Self, RuntimeError> {
        Ok(Self { by_pid: DontForkArray::new(PID_LIMIT)?, live: DontForkArray::new(MAX_STAGES as usize)?, len: 0 })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records child `pid` running `stage`. False when the table is full or `pid` is out of
    /// range or already recorded (a living child's pid is unique, so neither happens).
    #[must_use]
    pub fn insert(&mut self, pid: libc::pid_t, stage: StageId) -> bool {
        let Ok(index) = usize::try_from(pid) else { return false };
        if self.len == self.live.len() || self.by_pid.get(index).is_none_or(|slot| slot != 0) {
            return false;
        }
        self.live.set(self.len, pid);
        self.len += 1;
        self.by_pid.set(index, u64::from(stage) << 32 | self.len as u64)
    }

    /// Whether `pid` is a living child of ours.
    pub fn contains(&self, pid: libc::pid_t) -> bool {
        self.slot(pid).is_some()
    }

    /// Forgets child `pid`, returning its stage.
    pub fn remove(&mut self, pid: libc::pid_t) -> Option<StageId> {
        let (index, slot) = self.slot(pid)?;
        let position = (slot as u32 - 1) as usize;
        // Move the last pid into the hole, and tell its slot where it went.
        let last = self.live.get(self.len - 1)?;
        self.live.set(position, last);
        if let Some(last_index) = usize::try_from(last).ok().filter(|&i| i != index) {
            let last_slot = self.by_pid.get(last_index)?;
            self.by_pid.set(last_index, (last_slot & !u64::from(u32::MAX)) | (position as u64 + 1));
        }
        self.len -= 1;
        self.by_pid.set(index, 0);
        Some((slot >> 32) as StageId)
    }

    /// The pid at `position` (below [`len`](Self::len)); a removal moves the last pid into the
    /// hole, so a scan that may remove goes from the end.
    pub fn pid_at(&self, position: usize) -> Option<libc::pid_t> {
        if position < self.len {
            self.live.get(position)
        } else {
            None
        }
    }

    /// The stage of `pid`, if it is a living child of ours.
    pub fn stage_of(&self, pid: libc::pid_t) -> Option<StageId> {
        self.slot(pid).map(|(_, slot)| (slot >> 32) as StageId)
    }

    fn slot(&self, pid: libc::pid_t) -> Option<(usize, u64)> {
        let index = usize::try_from(pid).ok()?;
        self.by_pid.get(index).filter(|&slot| slot != 0).map(|slot| (index, slot))
    }
}

/// A fixed array of zero-initialised plain integers in a private anonymous mapping that
/// `fork` leaves out of the child. Untouched pages cost nothing.
struct DontForkArray<T> {
    base: std::ptr::NonNull<T>,
    len: usize,
}

impl<T: bytemuck::Zeroable + Copy> DontForkArray<T> {
    fn new(len: usize) -> Result<Self, RuntimeError> {
        let bytes = len * std::mem::size_of::<T>();
        // SAFETY: a fresh private anonymous mapping at a kernel-chosen address; no memory of
        // ours is involved. MAP_NORESERVE: only touched pages count against memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(RuntimeError::os("mmap"));
        }
        let array = Self { base: std::ptr::NonNull::new(ptr.cast()).expect("mmap never returns null on success"), len };
        // SAFETY: advice on exactly the mapping made above, which we own.
        if unsafe { libc::madvise(ptr, bytes, libc::MADV_DONTFORK) } != 0 {
            return Err(RuntimeError::os("madvise"));
        }
        Ok(array)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<T> {
        // SAFETY: index < len keeps the read inside the mapping; anonymous memory starts zeroed
        // and T is Zeroable plain data, so every element is initialised.
        (index < self.len).then(|| unsafe { self.base.as_ptr().add(index).read() })
    }

    fn set(&mut self, index: usize, value: T) -> bool {
        if index >= self.len {
            return false;
        }
        // SAFETY: index < len keeps the write inside our mapping; `&mut self` makes it the only
        // access (the server is single-threaded, and no child maps this memory).
        unsafe { self.base.as_ptr().add(index).write(value) };
        true
    }
}

impl<T> Drop for DontForkArray<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of this length; nothing borrows from it past `&self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len * std::mem::size_of::<T>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_remove_keep_pids_and_stages_paired() {
        let mut children = Children::new().unwrap();
        assert!(children.is_empty());
        for (pid, stage) in [(100, 1), (4_194_303, 2), (7, 3), (12_345, 4)] {
            assert!(children.insert(pid, stage));
        }
        assert_eq!(children.len(), 4);
        assert!(!children.insert(7, 9), "a recorded pid is refused");
        assert!(!children.insert(4_194_304, 9), "a pid beyond the kernel's limit is refused");
        assert!(!children.insert(-1, 9));
        assert_eq!(children.stage_of(4_194_303), Some(2));
        // Removing from the middle moves the last pid into the hole; every pair stays intact.
        assert_eq!(children.remove(100), Some(1));
        assert_eq!(children.remove(100), None);
        assert!(!children.contains(100));
        let mut left: Vec<_> = (0..children.len()).filter_map(|i| children.pid_at(i)).collect();
        left.sort_unstable();
        assert_eq!(left, [7, 12_345, 4_194_303]);
        assert_eq!(children.pid_at(3), None);
        for (pid, stage) in [(7, 3), (12_345, 4), (4_194_303, 2)] {
            assert_eq!(children.stage_of(pid), Some(stage));
        }
        assert_eq!(children.remove(12_345), Some(4), "removing the last one");
        assert_eq!(children.remove(7), Some(3));
        assert_eq!(children.remove(4_194_303), Some(2));
        assert!(children.is_empty());
        assert!(children.insert(100, 5), "a freed pid can come back");
        assert_eq!(children.stage_of(100), Some(5));
    }

    #[test]
    fn a_full_table_refuses_more() {
        let mut children = Children::new().unwrap();
        for pid in 1..=MAX_STAGES as i32 {
            assert!(children.insert(pid, pid as StageId));
        }
        assert!(!children.insert(MAX_STAGES as i32 + 1, 1));
        // Scan from the end while removing, as the server does.
        for position in (0..children.len()).rev() {
            let pid = children.pid_at(position).unwrap();
            assert_eq!(children.remove(pid), Some(pid as StageId));
        }
        assert!(children.is_empty());
    }

    #[test]
    fn a_forked_child_does_not_inherit_the_table() {
        let children = Children::new().unwrap();
        let address = children.live.base.as_ptr() as usize;
        // Forking from the threaded test harness is safe here: the child calls only
        // async-signal-safe functions (msync, _exit), so no lock another thread held matters.
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // msync on an unmapped range fails with ENOMEM: the mapping is not there.
            // SAFETY: msync only inspects the range; it touches no memory of ours.
            let rc = unsafe { libc::msync(address as *mut libc::c_void, 4096, libc::MS_ASYNC) };
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(if rc != 0 { 0 } else { 1 }) };
        }
        assert!(pid > 0);
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; pid is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw the table: {status:#x}");
    }
}
