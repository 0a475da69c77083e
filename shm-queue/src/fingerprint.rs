//! A layout fingerprint of the element type, so a segment is never read as the wrong type.

/// Size, alignment and name of an element type, as recorded in a segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFingerprint {
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
    /// FNV-1a hash of `type_name::<T>()`.
    pub name_hash: u64,
    /// `type_name::<T>()`, cut to the header's field.
    pub name: String,
}

impl TypeFingerprint {
    /// The fingerprint of `T`.
    pub fn of<T>() -> Self {
        let name = std::any::type_name::<T>();
        Self {
            size: std::mem::size_of::<T>() as u32,
            align: std::mem::align_of::<T>() as u32,
            name_hash: fnv1a(name.as_bytes()),
            name: name.to_owned(),
        }
    }

    /// A fingerprint for untyped byte records of `size` bytes (the C interface's elements).
    pub fn bytes(size: u32) -> Self {
        let name = format!("[u8; {size}]");
        Self { size, align: 1, name_hash: fnv1a(name.as_bytes()), name }
    }
}

impl std::fmt::Display for TypeFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (size {}, align {})", self.name, self.size, self.align)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
