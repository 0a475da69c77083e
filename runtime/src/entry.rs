//! Entry points: plain functions registered before the run starts, named by index.
//!
//! A closure cannot travel to the fork server, but an index into a table that the server
//! inherited by `fork` can; arguments travel as plain old data.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::error::StageResult;
use crate::handle::RunHandle;

/// A registered entry point taking arguments of type `A`. Plain data itself, so a stage can
/// pass it on in another stage's arguments (a stage that spawns more of its own kind).
///
/// It names its function by index in the builder that registered it, and carries that
/// builder's number: a run refuses an entry of another builder (`ForeignEntry`), whose index
/// would name some other function here.
#[repr(C)]
pub struct Entry<A> {
    index: u32,
    registry: u32,
    _args: PhantomData<fn(A)>,
}

impl<A> Entry<A> {
    pub(crate) fn index(self) -> u32 {
        self.index
    }

    pub(crate) fn registry(self) -> u32 {
        self.registry
    }
}

impl<A> Clone for Entry<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Entry<A> {}

impl<A> std::fmt::Debug for Entry<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({} of builder {})", self.index, self.registry)
    }
}

// SAFETY: `repr(C)` over two u32 (PhantomData is zero-sized): every bit pattern is a valid
// value, and there is no padding. An index that names no entry is refused by the server, and
// one of another builder by `spawn`.
unsafe impl<A: 'static> Zeroable for Entry<A> {}
// SAFETY: as above; Copy and 'static.
unsafe impl<A: 'static> Pod for Entry<A> {}

type Erased = Box<dyn Fn(&RunHandle, &[u8]) -> StageResult>;

/// The entry points of a run, in registration order.
pub(crate) struct Registry {
    /// This builder's number, unique in the process (registries of other processes never meet
    /// this run's: stages are forked from its root).
    id: u32,
    entries: Vec<(&'static str, Erased)>,
}

/// The next registry's number; 0 is never handed out.
static NEXT_REGISTRY: AtomicU32 = AtomicU32::new(1);

impl Default for Registry {
    fn default() -> Self {
        Self { id: NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed), entries: Vec::new() }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|(name, _)| name)).finish()
    }
}

impl Registry {
    pub fn register<A: Pod>(&mut self, name: &'static str, f: fn(&RunHandle, A) -> StageResult) -> Entry<A> {
        let index = self.entries.len() as u32;
        self.entries.push((
            name,
            Box::new(move |run, bytes| {
                let want = std::mem::size_of::<A>();
                let bytes =
                    bytes.get(..want).ok_or("spawn request carries fewer argument bytes than the entry takes")?;
                f(run, bytemuck::pod_read_unaligned(bytes))
            }),
        ));
        Entry { index, registry: self.id, _args: PhantomData }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn get(&self, index: u32) -> Option<&(&'static str, Erased)> {
        self.entries.get(index as usize)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(name, _)| *name).collect()
    }
}
