//! What travels to the fork server, and queue names that travel in stage arguments.

use bytemuck::{Pod, Zeroable};

/// Bytes of arguments a spawn request carries.
pub const ARGS_MAX: usize = 512;

/// A request to the fork server to start one stage.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct SpawnRequest {
    pub stage: u32,
    pub entry: u32,
    pub args_len: u32,
    pub parent: u32,
    pub args: [u8; ARGS_MAX],
}

impl SpawnRequest {
    /// `entry` of the request `finish` sends to wake the server (no entry has this index).
    pub const WAKE: u32 = u32::MAX;

    /// Starts nothing: wakes the server to look at the run's state.
    pub fn wake() -> Self {
        Self { entry: Self::WAKE, ..Zeroable::zeroed() }
    }
}

/// A queue's segment name as plain data, to put in stage arguments.
///
/// ```
/// let name = runtime::QueueName::new("/shmpipe.1.2.0.q3").unwrap();
/// assert_eq!(name.as_str(), "/shmpipe.1.2.0.q3");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct QueueName {
    bytes: [u8; 128],
}

impl QueueName {
    /// `None` if `name` is longer than 127 bytes.
    pub fn new(name: &str) -> Option<Self> {
        let mut bytes = [0u8; 128];
        if name.len() >= bytes.len() {
            return None;
        }
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(Self { bytes })
    }

    /// The name. Bytes that are not UTF-8 (scribbled memory) give an empty name, which every
    /// open refuses.
    pub fn as_str(&self) -> &str {
        let len = self.bytes.iter().position(|&b| b == 0).unwrap_or(self.bytes.len());
        std::str::from_utf8(&self.bytes[..len]).unwrap_or("")
    }
}

impl std::fmt::Debug for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueName({:?})", self.as_str())
    }
}
