//! Entry points: plain functions registered before the run starts, named by index.
//!
//! A closure cannot travel to the fork server, but an index into a table that the server
//! inherited by `fork` can; arguments travel as plain old data.

use std::marker::PhantomData;

use bytemuck::{Pod, Zeroable};

use crate::error::StageResult;
use crate::handle::RunHandle;

/// A registered entry point taking arguments of type `A`. Plain data itself, so a stage can
/// pass it on in another stage's arguments (a stage that spawns more of its own kind).
#[repr(transparent)]
pub struct Entry<A> {
    index: u32,
    _args: PhantomData<fn(A)>,
}

impl<A> Entry<A> {
    pub(crate) fn index(self) -> u32 {
        self.index
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
        write!(f, "Entry({})", self.index)
    }
}

// SAFETY: `repr(transparent)` over a u32 (PhantomData is zero-sized): every bit pattern is a
// valid value, and there is no padding. An index that names no entry is refused by the server.
unsafe impl<A: 'static> Zeroable for Entry<A> {}
// SAFETY: as above; Copy and 'static.
unsafe impl<A: 'static> Pod for Entry<A> {}

type Erased = Box<dyn Fn(&RunHandle, &[u8]) -> StageResult>;

/// The entry points of a run, in registration order.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Vec<(&'static str, Erased)>,
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
        Entry { index, _args: PhantomData }
    }

    pub fn get(&self, index: u32) -> Option<&(&'static str, Erased)> {
        self.entries.get(index as usize)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(name, _)| *name).collect()
    }
}
