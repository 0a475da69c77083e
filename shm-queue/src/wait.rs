//! Waiting for the other side: a short adaptive spin where it can pay, then a shared-futex
//! sleep with a bounded timeout.
//!
//! The protocol (a Dekker pair, so no wake-up is lost):
//! - sleeper: `sleepers += 1`; read `seq`; full fence; re-check the condition; sleep on `seq`
//!   only if it still fails; afterwards `sleepers -= 1`. Only the sleeper touches `sleepers`.
//! - waker: publish (index or sequence store); full fence; read `sleepers`; if non-zero, bump
//!   `seq` and FUTEX_WAKE.
//!
//! Either the waker's fence orders its publish before the sleeper's re-check (the sleeper sees
//! the item), or the sleeper's increment before the waker's read (the waker bumps `seq`, and
//! the sleeper's FUTEX_WAIT, which compares `seq` atomically in the kernel, returns at once or
//! is woken). Timeouts are bounded so a sleeper periodically re-checks closure, poison and dead
//! peers even if every other party is gone.

use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::time::{Duration, Instant};

use crate::control::{SideStats, WaitWord};
use crate::futex;
use crate::sync::{fence, spin_hint, Ordering};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The condition holds (or may: the caller re-tries its operation).
    Ready,
    /// The deadline passed first.
    TimedOut,
}

/// What one handle remembers of its past waits: the spin budget, adapted to how often
/// spinning has paid off, and how long it has waited in vain since it last checked its peers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waiter {
    spin_limit: u32,
    /// Time asleep in calls that timed out since the last dead-peer check. A caller that polls
    /// with timeouts shorter than the re-check period (say 10 ms in an event loop) would
    /// otherwise never reach a check, and wait on a dead peer forever.
    unchecked: Duration,
}

const SPIN_MIN: u32 = 16;
/// How long, after a signal interrupted a sleep, to re-check often, and how often.
const ALERT_PERIOD: Duration = Duration::from_secs(1);
const ALERT_RECHECK: Duration = Duration::from_millis(10);
const SPIN_MAX: u32 = 4096;

impl Default for Waiter {
    fn default() -> Self {
        Self { spin_limit: 256, unchecked: Duration::ZERO }
    }
}

impl Waiter {
    fn spin_paid(&mut self) {
        self.spin_limit = (self.spin_limit * 2).min(SPIN_MAX);
    }

    fn spin_wasted(&mut self) {
        self.spin_limit = (self.spin_limit / 2).max(SPIN_MIN);
    }
}

/// Whether the peer can be running while we spin: more than one CPU is online and no more
/// processes are runnable than there are CPUs. Sampled from `/proc/loadavg` at most every
/// 50 ms per process; spinning when processes outnumber cores only steals the peer's CPU.
/// `now` is the caller's clock reading (a wait reads the clock once before it spins).
fn spinning_can_pay(now: Instant) -> bool {
    static CPUS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static LAST_SAMPLE_MS: StdAtomicU64 = StdAtomicU64::new(0);
    static LAST_VERDICT: StdAtomicU64 = StdAtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64));
    if cpus < 2 {
        return false;
    }
    let now_ms = now.saturating_duration_since(*EPOCH.get_or_init(|| now)).as_millis() as u64 + 1;
    let last = LAST_SAMPLE_MS.load(std::sync::atomic::Ordering::Relaxed);
    if last != 0 && now_ms.saturating_sub(last) < 50 {
        return LAST_VERDICT.load(std::sync::atomic::Ordering::Relaxed) == 1;
    }
    let verdict = runnable_processes().is_some_and(|running| running <= cpus);
    LAST_VERDICT.store(u64::from(verdict), std::sync::atomic::Ordering::Relaxed);
    LAST_SAMPLE_MS.store(now_ms, std::sync::atomic::Ordering::Relaxed);
    verdict
}

/// The fourth field of `/proc/loadavg`, `running/total`: currently runnable scheduling entities.
fn runnable_processes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split('/').next()?.parse().ok()
}

/// The deadline `timeout` from now; `None` (no deadline) when that instant cannot be
/// represented, so that `Duration::MAX` means "wait as long as it takes" instead of a panic.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits until `ready()` holds or `deadline` passes. `recheck()` runs every `recheck_every`
/// while asleep (dead-peer detection), counting the time this handle slept in earlier calls
/// that timed out; `ready()` must include every reason to stop waiting (item or room
/// available, closed, poisoned).
pub(crate) fn wait_until(
    word: &WaitWord,
    stats: &SideStats,
    waiter: &mut Waiter,
    deadline: Option<Instant>,
    recheck_every: Duration,
    mut ready: impl FnMut() -> bool,
    mut recheck: impl FnMut(),
) -> Waited {
    // The clock is read once here and once after each sleep: at the original's depth of 10 a
    // stage waits every ~9 items, and five readings per wait were ~3 % of its CPU.
    let started = Instant::now();
    if spinning_can_pay(started) {
        for _ in 0..waiter.spin_limit {
            spin_hint();
            if ready() {
                waiter.spin_paid();
                waiter.unchecked = Duration::ZERO;
                return Waited::Ready;
            }
        }
        waiter.spin_wasted();
    }
    stats.blocked.fetch_add(1, Ordering::Relaxed);
    let mut now = started;
    // (`unchecked` is time this process has slept, so the clock, which counts from boot, always
    // reaches back that far.)
    let mut last_recheck = started.checked_sub(waiter.unchecked).unwrap_or(started);
    // After a signal, re-check often for a moment: the death it announced may complete (and
    // the next signal arrive) while we are not asleep, and signals do not queue.
    let mut alert_until: Option<Instant> = None;
    let outcome = loop {
        word.sleepers.fetch_add(1, Ordering::SeqCst);
        let seq = word.seq.load(Ordering::SeqCst);
        // Pairs with the fence in `wake_if_sleeping`: see the module docs.
        fence(Ordering::SeqCst);
        if ready() {
            word.sleepers.fetch_sub(1, Ordering::SeqCst);
            break Waited::Ready;
        }
        let alert = alert_until.is_some_and(|until| now < until);
        // Asleep until the next check is due, counting time carried over from earlier calls.
        let until_check = recheck_every.saturating_sub(now.saturating_duration_since(last_recheck));
        let mut timeout = if alert { until_check.min(ALERT_RECHECK) } else { until_check };
        if let Some(deadline) = deadline {
            if now >= deadline {
                word.sleepers.fetch_sub(1, Ordering::SeqCst);
                break Waited::TimedOut;
            }
            timeout = timeout.min(deadline - now);
        }
        stats.futex_waits.fetch_add(1, Ordering::Relaxed);
        let interrupted = futex::wait(&word.seq, seq, timeout);
        word.sleepers.fetch_sub(1, Ordering::SeqCst);
        now = Instant::now();
        // A signal (say SIGCHLD: a peer process died) is worth a look now rather than at the
        // next re-check, which may be a minute away.
        if interrupted {
            alert_until = Some(now + ALERT_PERIOD);
        }
        if interrupted || alert || now.saturating_duration_since(last_recheck) >= recheck_every {
            recheck();
            last_recheck = now;
        }
    };
    // A wait that ended ready saw the peer act (or the queue end); one that timed out carries
    // its unchecked time over to the next call.
    waiter.unchecked = match outcome {
        Waited::Ready => Duration::ZERO,
        Waited::TimedOut => now.saturating_duration_since(last_recheck),
    };
    // Blocked from before the spin to the last wake-up: a spin that did not pay counts too.
    stats.blocked_ns.fetch_add(
        now.saturating_duration_since(started).as_nanos().min(u128::from(u64::MAX)) as u64,
        Ordering::Relaxed,
    );
    outcome
}

/// After a publish: is anyone asleep on `word`? The fence orders our publish before this read
/// (the waker's half of the Dekker pair).
#[inline]
pub(crate) fn anyone_sleeping(word: &WaitWord) -> bool {
    fence(Ordering::SeqCst);
    word.sleepers.load(Ordering::Relaxed) != 0
}

/// Wakes every sleeper on `word`. Call only when `anyone_sleeping` said so.
pub(crate) fn wake_all(word: &WaitWord, stats: &SideStats) {
    word.seq.fetch_add(1, Ordering::SeqCst);
    futex::wake_all(&word.seq);
    stats.futex_wakes.fetch_add(1, Ordering::Relaxed);
}
