//! Validated POSIX shared-memory names.

use std::fmt;

use crate::error::NameError;

/// The longest name the kernel accepts for a file in `/dev/shm` (`NAME_MAX`), without the `/`.
pub const MAX_NAME_LEN: usize = 255;

/// A name that `shm_open` will accept: one leading `/`, no other `/`, 1..=255 printable ASCII
/// characters after it (no space, as a name on a command line), and not `.` or `..`.
///
/// ```
/// use shm_queue::ShmName;
/// assert!(ShmName::new("/shmpipe-demo").is_ok());
/// assert!(ShmName::new("no-slash").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShmName(String);

impl ShmName {
    /// Validates `name`.
    ///
    /// # Errors
    /// A [`NameError`] naming the rule that failed.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let rest = name.strip_prefix('/').ok_or(NameError::MissingLeadingSlash)?;
        if rest.is_empty() {
            return Err(NameError::Empty);
        }
        if rest.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: rest.len(), max: MAX_NAME_LEN });
        }
        if rest.contains('/') {
            return Err(NameError::InnerSlash);
        }
        if rest == "." || rest == ".." {
            return Err(NameError::DotName);
        }
        if let Some(c) = rest.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(NameError::NotPrintable { found: c });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name with its leading `/`, as `shm_open` takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name in `/dev/shm` (the name without its leading `/`).
    pub fn file_name(&self) -> &str {
        &self.0[1..]
    }

    pub(crate) fn to_cstring(&self) -> std::ffi::CString {
        // Validation refused every non-graphic character, NUL included.
        std::ffi::CString::new(self.0.as_bytes()).expect("validated names hold no NUL")
    }
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShmName({:?})", self.0)
    }
}

impl TryFrom<&str> for ShmName {
    type Error = NameError;
    fn try_from(name: &str) -> Result<Self, NameError> {
        Self::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_has_its_own_error() {
        assert_eq!(ShmName::new("x"), Err(NameError::MissingLeadingSlash));
        assert_eq!(ShmName::new("/"), Err(NameError::Empty));
        assert_eq!(ShmName::new("/a/b"), Err(NameError::InnerSlash));
        assert_eq!(ShmName::new("/.."), Err(NameError::DotName));
        assert_eq!(ShmName::new("/a b"), Err(NameError::NotPrintable { found: ' ' }));
        let long = format!("/{}", "a".repeat(256));
        assert_eq!(ShmName::new(&long), Err(NameError::TooLong { len: 256, max: 255 }));
        let ok = format!("/{}", "a".repeat(255));
        assert_eq!(ShmName::new(&ok).unwrap().file_name().len(), 255);
    }
}
