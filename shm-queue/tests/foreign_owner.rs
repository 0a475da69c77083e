//! A segment owned by another user is refused: created here (as root in CI), opened from a
//! forked child that has dropped to another uid. Mode 0600 keeps that user out at `shm_open`.

#[macro_use]
mod support;

use shm_queue::{OpenError, Queue, Spsc};

fn main() {
    support::main(cases![a_child_of_another_uid_cannot_open_a_0600_segment]);
}

/// `nobody` on Debian.
const OTHER_UID: libc::uid_t = 65534;

fn a_child_of_another_uid_cannot_open_a_0600_segment() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Only root can become another user; as one user, every segment is one's own.
        println!("not root: the uid drop cannot be tested here");
        return;
    }
    let name = support::shm_name();
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(7).unwrap();
    support::fork_ok(|| {
        // SAFETY: setgid/setuid in a forked child that only does this check and exits.
        if unsafe { libc::setgid(OTHER_UID) } != 0 || unsafe { libc::setuid(OTHER_UID) } != 0 {
            return Err(format!("cannot drop to uid {OTHER_UID}: {}", std::io::Error::last_os_error()));
        }
        match Queue::<u64, Spsc>::open(&name) {
            Err(OpenError::PermissionDenied(n)) if n == name => Ok(()),
            Err(e) => Err(format!("expected PermissionDenied, got {e}")),
            Ok(_) => Err("another user opened a 0600 segment".into()),
        }
    })
    .wait_ok("the child of another uid");
    // The owner is unaffected.
    assert_eq!(queue.consumer().unwrap().try_pop(), Ok(7));
}
