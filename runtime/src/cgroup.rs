//! Where this process's cgroup for one controller (`memory`, `pids`) is: its directory and the
//! mount its hierarchy is seen through, found from `/proc/self/cgroup` and the mount table as a
//! container sees them. Both interfaces are read: v1, one hierarchy per controller, and v2, the
//! unified one.

use std::path::{Path, PathBuf};

/// Which cgroup interface holds a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1: one hierarchy per controller (`/sys/fs/cgroup/memory/…`).
    V1,
    /// cgroup v2: the unified hierarchy.
    V2,
}

/// This process's cgroup for one controller: where the limits of that controller are read
/// from, and where a child cgroup is made.
///
/// ```
/// // `None` where no cgroup file system is mounted or `/proc` cannot be read.
/// if let Some(pids) = runtime::Cgroup::of_this_process("pids") {
///     assert!(pids.dir().is_absolute());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub(crate) version: CgroupVersion,
    /// Its directory.
    pub(crate) dir: PathBuf,
    /// Where its hierarchy is mounted: nothing above is part of it.
    pub(crate) mount_point: PathBuf,
}

impl Cgroup {
    /// This process's cgroup for `controller` (`"memory"`, `"pids"`, …); `None` where the files
    /// cannot be read or the cgroup is not under any mount here.
    pub fn of_this_process(controller: &str) -> Option<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::named_in(&mountinfo, &cgroups, controller)
    }

    /// The cgroup interface it lives in.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Its directory: a process joins it by writing its pid to `cgroup.procs` there.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The levels from this cgroup up to its mount's root, nearest first: where a parent's
    /// limit binds its children.
    pub(crate) fn levels(&self) -> impl Iterator<Item = &Path> {
        self.dir.ancestors().take_while(|level| level.starts_with(&self.mount_point))
    }

    /// The cgroup for `controller` that the texts of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup` name. A v1 hierarchy of the controller takes precedence: where it is
    /// mounted, the unified (v2) hierarchy does not have that controller.
    fn named_in(mountinfo: &str, cgroups: &str, controller: &str) -> Option<Self> {
        // `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`, with `0::PATH` for v2.
        let path_of = |wanted: &dyn Fn(&str) -> bool| {
            cgroups.lines().find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                wanted(controllers).then_some(path)
            })
        };
        // `/proc/self/mountinfo`: `ID PARENT DEV ROOT MOUNT_POINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER_OPTIONS`.
        let mount_of = |wanted: &dyn Fn(&str, &str) -> bool| {
            mountinfo.lines().find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let fields: Vec<&str> = before.split(' ').collect();
                let mut rest = after.split(' ');
                let (fstype, _, options) = (rest.next()?, rest.next()?, rest.next().unwrap_or(""));
                wanted(fstype, options).then_some((*fields.get(3)?, *fields.get(4)?))
            })
        };
        let v1 = (
            CgroupVersion::V1,
            path_of(&|controllers| controllers.split(',').any(|c| c == controller)),
            mount_of(&|fstype, options| fstype == "cgroup" && options.split(',').any(|o| o == controller)),
        );
        let v2 = (CgroupVersion::V2, path_of(&str::is_empty), mount_of(&|fstype, _| fstype == "cgroup2"));
        [v1, v2].into_iter().find_map(|(version, path, mount)| {
            let (path, (root, mount_point)) = (Path::new(path?), mount?);
            // A cgroup outside the namespace's root shows as `/../…`: not under any mount here.
            if path.components().any(|c| c == std::path::Component::ParentDir) {
                return None;
            }
            // The mount shows the hierarchy from `root` down (a container's own subtree, say).
            let below = path.strip_prefix(unescape_mount_path(root)).ok()?;
            let mount_point = PathBuf::from(unescape_mount_path(mount_point));
            Some(Self { version, dir: mount_point.join(below), mount_point })
        })
    }
}

/// A number alone in a file (a cgroup's `pids.current`, `memory.current`; `/proc/sys/kernel/…`);
/// `None` for "max" or anything unreadable.
pub(crate) fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Mount points in `mountinfo` write space, tab, newline and backslash as octal escapes.
fn unescape_mount_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_a_v1_controller_before_the_unified_hierarchy() {
        let cgroups = "9:name=systemd:/\n8:pids:/jobs/7\n4:memory:/jobs/42\n1:cpu:/\n0::/\n";
        let found = Cgroup::named_in(HYBRID_MOUNTS, cgroups, "memory").unwrap();
        assert_eq!(found.version, CgroupVersion::V1);
        assert_eq!(found.dir, PathBuf::from("/sys/fs/cgroup/memory/jobs/42"));
        assert_eq!(found.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        let levels: Vec<&Path> = found.levels().collect();
        assert_eq!(
            levels,
            ["/sys/fs/cgroup/memory/jobs/42", "/sys/fs/cgroup/memory/jobs", "/sys/fs/cgroup/memory"].map(Path::new)
        );
        let pids = Cgroup::named_in(HYBRID_MOUNTS, cgroups, "pids").unwrap();
        assert_eq!(pids.dir, PathBuf::from("/sys/fs/cgroup/pids/jobs/7"));
        // Co-mounted controllers (`cpu,memory`) are found by the one wanted.
        let mounts = "35 31 0:32 / /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory\n";
        let found = Cgroup::named_in(mounts, "4:cpu,memory:/a\n", "memory").unwrap();
        assert_eq!(found.dir, PathBuf::from("/sys/fs/cgroup/cpu,memory/a"));
    }

    #[test]
    fn finds_a_v2_cgroup_below_the_mount_root() {
        // A container whose cgroup namespace was not unshared: the mount shows its subtree.
        let mounts = "29 23 0:26 /kubepods/pod7 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let found = Cgroup::named_in(mounts, "0::/kubepods/pod7/ctr\n", "pids").unwrap();
        assert_eq!((found.version, found.dir), (CgroupVersion::V2, PathBuf::from("/sys/fs/cgroup/ctr")));
        // Escaped spaces in the mount's root and point, as mountinfo writes them.
        let mounts = "29 23 0:26 /my\\040jobs /mnt/cg\\040v2 rw - cgroup2 cgroup2 rw\n";
        let found = Cgroup::named_in(mounts, "0::/my jobs/step 1\n", "memory").unwrap();
        assert_eq!(found.dir, PathBuf::from("/mnt/cg v2/step 1"));
        // A cgroup outside this namespace's root, or no cgroup file system: nothing to read.
        assert_eq!(Cgroup::named_in(mounts, "0::/../elsewhere\n", "memory"), None);
        assert_eq!(Cgroup::named_in("", "0::/kubepods/pod7/ctr\n", "memory"), None);
        assert_eq!(unescape_mount_path("/mnt/with\\040space\\\\x"), "/mnt/with space\\\\x");
    }
}
