//! The Mesos container id, validated once so it is safe as a ledger file name and in messages.
//!
//! Mesos ids are made of `[A-Za-z0-9_.-]`; a nested container's id is its ancestors' ids and its
//! own joined with `.` (as the agent's sandbox paths show them). We refuse everything else, and
//! the shapes that would be ambiguous or special as a file name: empty components (a leading or
//! trailing `.`, or `..`), which also rules out `.` and `..` themselves.

use crate::names::validated_string;

/// Longest container id we accept, in bytes.
pub const MAX_CONTAINER_ID_BYTES: usize = 255;

/// Why a container id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid container id {id:?}: {reason}")]
pub struct ContainerIdError {
    pub id: String,
    pub reason: &'static str,
}

/// A validated Mesos container id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn new(id: &str) -> Result<Self, ContainerIdError> {
        let bad = |reason| ContainerIdError {
            id: id.to_owned(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("it is empty"));
        }
        if id.len() > MAX_CONTAINER_ID_BYTES {
            return Err(bad("it is longer than 255 bytes"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(bad(
                "only letters, digits, '_', '-' and '.' (between nested ids) are allowed",
            ));
        }
        if id.split('.').any(str::is_empty) {
            return Err(bad(
                "nested ids are joined by single '.' characters; an empty part is not an id",
            ));
        }
        Ok(Self(id.to_owned()))
    }

    /// Joins a nested container's id onto its parent's.
    pub fn child(&self, id: &str) -> Result<Self, ContainerIdError> {
        Self::new(&format!("{}.{id}", self.0))
    }
}

validated_string!(ContainerId);

impl std::str::FromStr for ContainerId {
    type Err = ContainerIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_ids_are_accepted() {
        for ok in [
            "6d4e2cb4-4a1c-4f3c-9a3e-1b2c3d4e5f60",
            "6d4e2cb4-4a1c-4f3c-9a3e-1b2c3d4e5f60.check-1",
            "a",
            "A_b-9",
        ] {
            assert!(ContainerId::new(ok).is_ok(), "{ok}");
        }
        let parent = ContainerId::new("p").unwrap();
        assert_eq!(parent.child("c").unwrap().as_str(), "p.c");
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        for bad in [
            "", ".", "..", ".a", "a.", "a..b", "a/b", "../etc", "a b", "ü", "a\nb", "a:b",
        ] {
            let err = ContainerId::new(bad).unwrap_err();
            assert!(err.to_string().contains("invalid container id"), "{err}");
        }
        assert!(ContainerId::new(&"a".repeat(255)).is_ok());
        assert!(ContainerId::new(&"a".repeat(256)).is_err());
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<ContainerId>("\"a.b\"").is_ok());
        assert!(serde_json::from_str::<ContainerId>("\"a/b\"").is_err());
    }
}
