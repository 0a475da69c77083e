//! Ring kinds as types: what an end may do is known at compile time.

use std::fmt;

/// The four ring kinds, as stored in a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum KindId {
    /// One producer, one consumer.
    Spsc = 1,
    /// Many producers, one consumer.
    Mpsc = 2,
    /// One producer, many consumers.
    Spmc = 3,
    /// Many producers, many consumers.
    Mpmc = 4,
}

impl KindId {
    /// Decodes a header field.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Spsc),
            2 => Some(Self::Mpsc),
            3 => Some(Self::Spmc),
            4 => Some(Self::Mpmc),
            _ => None,
        }
    }

    /// `"SPSC"`, `"MPSC"`, `"SPMC"` or `"MPMC"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spsc => "SPSC",
            Self::Mpsc => "MPSC",
            Self::Spmc => "SPMC",
            Self::Mpmc => "MPMC",
        }
    }

    /// Whether several producers may be attached at once.
    pub fn multi_producer(self) -> bool {
        matches!(self, Self::Mpsc | Self::Mpmc)
    }

    /// Whether several consumers may be attached at once.
    pub fn multi_consumer(self) -> bool {
        matches!(self, Self::Spmc | Self::Mpmc)
    }

    /// SPSC uses a Lamport ring; the others Vyukov's per-slot sequence numbers.
    pub(crate) fn has_slot_sequences(self) -> bool {
        self != Self::Spsc
    }
}

impl fmt::Display for KindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A ring kind as a type parameter of [`Queue`](crate::Queue), [`Producer`](crate::Producer)
/// and [`Consumer`](crate::Consumer). Sealed: the four kinds below are all there is.
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// The kind's header value.
    const ID: KindId;
}

/// Kinds whose producer end may be cloned or attached several times.
pub trait MultiProducer: Kind {}
/// Kinds whose consumer end may be cloned or attached several times.
pub trait MultiConsumer: Kind {}
/// Kinds with one producer, whose reservations are its own until published: it may publish
/// part of one ([`WriteChunk::commit_first`](crate::WriteChunk::commit_first)).
pub trait SingleProducer: Kind {}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident => $id:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;
        impl sealed::Sealed for $name {}
        impl Kind for $name {
            const ID: KindId = KindId::$id;
        }
    )*};
}

kinds! {
    /// Single producer, single consumer: a Lamport ring with cached indices, the fastest kind.
    Spsc => Spsc;
    /// Multi producer, single consumer (Vyukov's bounded queue).
    Mpsc => Mpsc;
    /// Single producer, multi consumer (Vyukov's bounded queue).
    Spmc => Spmc;
    /// Multi producer, multi consumer (Vyukov's bounded queue).
    Mpmc => Mpmc;
}

impl MultiProducer for Mpsc {}
impl MultiProducer for Mpmc {}
impl MultiConsumer for Spmc {}
impl SingleProducer for Spsc {}
impl SingleProducer for Spmc {}
impl MultiConsumer for Mpmc {}
