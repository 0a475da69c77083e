//! A child of this process's memory cgroup with a memory limit and no swap, or of its pids
//! cgroup with a limit on tasks, for tests of what happens when memory or processes run out.
//! Needs root and a writable cgroup file system (cgroup v1, or v2 where the controller is
//! enabled for children). Included by path from the tests that use it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cgroup; dropping it moves this process back out (if [`enter`](Self::enter)ed) and
/// removes it once the kernel has let go of the processes that ran in it (trying for 2 s:
/// callers check that it is gone).
pub struct LimitedCgroup {
    dir: PathBuf,
    parent: PathBuf,
    entered: bool,
}

impl LimitedCgroup {
    /// Makes `name` under this process's memory cgroup, limited to `limit` bytes of memory and
    /// none of swap. `Err` says why it cannot (for the test to say it skipped).
    pub fn new(name: &str, limit: u64) -> Result<Self, String> {
        let cgroup = Self::make("memory", name)?;
        let limit = limit.to_string();
        let write = |file: &str, value: &str| std::fs::write(cgroup.dir.join(file), value).is_ok();
        if !(write("memory.limit_in_bytes", &limit) || write("memory.max", &limit)) {
            return Err(format!("cannot limit a cgroup's memory under {}", cgroup.parent.display()));
        }
        // Without a swap limit, a machine with swap would page out what should not fit.
        let no_swap = write("memory.memsw.limit_in_bytes", &limit)
            || write("memory.swap.max", "0")
            || std::fs::read_to_string("/proc/meminfo")
                .is_ok_and(|m| m.lines().any(|l| l.split_whitespace().eq(["SwapTotal:", "0", "kB"])));
        if !no_swap {
            return Err("swap is on and a cgroup's use of it cannot be limited".into());
        }
        Ok(cgroup)
    }

    /// Makes `name` under this process's pids cgroup, limited to `max` tasks.
    #[allow(dead_code)] // not every test that includes this file limits tasks
    pub fn pids(name: &str, max: u32) -> Result<Self, String> {
        let cgroup = Self::make("pids", name)?;
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string())
            .map_err(|e| format!("cannot limit a cgroup's tasks under {}: {e}", cgroup.parent.display()))?;
        Ok(cgroup)
    }

    fn make(controller: &str, name: &str) -> Result<Self, String> {
        let parent = runtime::Cgroup::of_this_process(controller)
            .ok_or_else(|| format!("no {controller} cgroup to read"))?
            .dir()
            .to_owned();
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot make a cgroup under {}: {e}", parent.display()))?;
        Ok(Self { dir, parent, entered: false })
    }

    /// Its directory: a process joins it by writing its pid to `cgroup.procs` there.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves this process in (its children will be born in it).
    pub fn enter(&mut self) {
        std::fs::write(self.dir.join("cgroup.procs"), std::process::id().to_string()).unwrap();
        self.entered = true;
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        if self.entered {
            let _ = std::fs::write(self.parent.join("cgroup.procs"), std::process::id().to_string());
        }
        // Processes that ran in it have exited; the kernel may take a moment to let them go.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
