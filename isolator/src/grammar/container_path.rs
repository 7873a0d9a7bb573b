//! Where a task sees a volume: the validated, normalised value of `DVDI_VOLUME_CONTAINERPATH`.
//!
//! Only the shape is checked here (pure logic); whether the path exists, may be created or hides
//! a symlink is the planner's business, on the host.

use std::path::Path;

use crate::names::validated_string;

/// Longest container path we accept, in bytes (`PATH_MAX` less the terminating NUL).
pub const MAX_CONTAINER_PATH_BYTES: usize = 4095;

/// Why a container path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid container path {path:?}: {reason}")]
pub struct ContainerPathError {
    pub path: String,
    pub reason: &'static str,
}

/// A container path: absolute (that path in the container's mount namespace) or relative (under
/// the task sandbox). Never empty, never `/` alone, no `..` component, no control character.
/// Normalised: repeated `/`, `.` components and a trailing `/` are removed, so two spellings of
/// one place compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ContainerPath(String);

impl ContainerPath {
    pub fn new(path: &str) -> Result<Self, ContainerPathError> {
        let bad = |reason| ContainerPathError {
            path: path.to_owned(),
            reason,
        };
        if path.is_empty() {
            return Err(bad("it is empty"));
        }
        if path.len() > MAX_CONTAINER_PATH_BYTES {
            return Err(bad("it is longer than 4095 bytes"));
        }
        if path.chars().any(char::is_control) {
            return Err(bad("it contains a control character (NUL, newline, ...)"));
        }
        let absolute = path.starts_with('/');
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(bad("'..' components are not allowed")),
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(bad(if absolute {
                "'/' is the container's root; a volume cannot be mounted over it"
            } else {
                "it names the sandbox itself; a volume cannot be mounted over it"
            }));
        }
        let joined = parts.join("/");
        let normal = if absolute {
            format!("/{joined}")
        } else {
            joined
        };
        // Trimming would silently change the path, and a leading space would turn `/data` into
        // a relative path: refuse rather than guess. Checked after normalisation, so that
        // `"a /"` (which would become `"a "`) is refused too and `new` accepts its own output.
        if normal.trim() != normal {
            return Err(bad("it starts or ends with whitespace"));
        }
        Ok(Self(normal))
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// Absolute: a path in the container's mount namespace. Otherwise under the task sandbox.
    pub fn is_absolute(&self) -> bool {
        self.0.starts_with('/')
    }
}

validated_string!(ContainerPath);

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> String {
        ContainerPath::new(p)
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
            .to_string()
    }

    #[test]
    fn absolute_and_relative_paths_are_kept_apart() {
        assert_eq!(norm("/tmp/config"), "/tmp/config");
        assert!(ContainerPath::new("/tmp/config").unwrap().is_absolute());
        assert_eq!(norm("data"), "data");
        assert!(!ContainerPath::new("data").unwrap().is_absolute());
        assert_eq!(
            ContainerPath::new("data").unwrap().as_path(),
            Path::new("data")
        );
    }

    #[test]
    fn repeated_and_trailing_slashes_and_dots_are_normalised() {
        assert_eq!(norm("//tmp///config/"), "/tmp/config");
        assert_eq!(norm("/tmp/./config/."), "/tmp/config");
        assert_eq!(norm("./data/"), "data");
        assert_eq!(norm("data//logs"), "data/logs");
        assert_eq!(norm("a b/ü:x"), "a b/ü:x");
        assert_eq!(norm("..a/b.."), "..a/b..");
    }

    #[test]
    fn refused_paths_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("/", "root"),
            ("//", "root"),
            ("/./", "root"),
            (".", "sandbox itself"),
            ("./", "sandbox itself"),
            ("..", "'..'"),
            ("/tmp/../etc", "'..'"),
            ("data/..", "'..'"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            (" /data", "whitespace"),
            ("/data ", "whitespace"),
            ("= /", "whitespace"),
            ("data /./", "whitespace"),
        ] {
            let err = ContainerPath::new(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(why), "{bad:?}: {text}");
            assert!(text.contains(&format!("{bad:?}")), "{bad:?}: {text}");
        }
        assert!(ContainerPath::new(&format!("/{}", "a".repeat(4094))).is_ok());
        assert!(ContainerPath::new(&format!("/{}", "a".repeat(4095))).is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let p = ContainerPath::new("/tmp/config").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"/tmp/config\"");
        assert_eq!(serde_json::from_str::<ContainerPath>(&json).unwrap(), p);
        assert!(serde_json::from_str::<ContainerPath>("\"/\"").is_err());
        assert!(serde_json::from_str::<ContainerPath>("\"../x\"").is_err());
    }
}
