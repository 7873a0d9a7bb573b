//! Validated names: the driver (plugin) name and the volume name.
//!
//! Both are checked for what they are (SPEC §2, §4), never against a shell blacklist: nothing we
//! build is ever handed to a shell. A `DriverName` is safe to use as a file name in the plugin
//! directories; a `VolumeName` is safe to use as one path component under the local driver root.

/// What every validated string type of the crate (`DriverName`, `VolumeName`, `ContainerId`,
/// `ContainerPath`: a newtype over `String` whose `new` checks the value) has in common:
/// `as_str`, `Display` as the string itself, and `Deserialize` through `new`, so a value read
/// from a record or JSON is checked exactly as one built in code.
macro_rules! validated_string {
    ($ty:ident) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use validated_string;

/// Why a driver or volume name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid driver name {name:?}: {reason}")]
    Driver { name: String, reason: &'static str },
    #[error("invalid volume name {name:?}: {reason}")]
    Volume { name: String, reason: &'static str },
}

/// Longest name we accept, in bytes (a file name component on Linux).
pub const MAX_NAME_BYTES: usize = 255;

/// A Docker volume plugin name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DriverName(String);

impl DriverName {
    /// Checks `name` before any file is looked at.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let bad = |reason| NameError::Driver {
            name: name.to_owned(),
            reason,
        };
        let mut bytes = name.bytes();
        match bytes.next() {
            None => return Err(bad("it is empty")),
            Some(b) if !b.is_ascii_alphanumeric() => {
                return Err(bad("it must start with a letter or digit"))
            }
            Some(_) => {}
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(bad("it is longer than 255 bytes"));
        }
        if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(bad("only letters, digits, '_', '.' and '-' are allowed"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The embedded in-process driver (SPEC §8).
    pub fn is_local(&self) -> bool {
        self.0 == "local"
    }
}

validated_string!(DriverName);

/// A volume name: 1–255 bytes of printable characters, no `/`, not `.` or `..`, not starting
/// with `-`. Plugins judge the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct VolumeName(String);

impl VolumeName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        let bad = |reason| NameError::Volume {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(bad("it is longer than 255 bytes"));
        }
        if name == "." || name == ".." {
            return Err(bad("'.' and '..' are not volume names"));
        }
        if name.starts_with('-') {
            return Err(bad("it must not start with '-'"));
        }
        if name.contains('/') {
            return Err(bad("it must not contain '/'"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("it must contain only printable characters"));
        }
        Ok(Self(name.to_owned()))
    }
}

validated_string!(VolumeName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_follow_the_plugin_rule() {
        for ok in [
            "rexray",
            "local",
            "btrfs",
            "a",
            "9",
            "scaleio.v2",
            "my_plugin-1",
        ] {
            assert!(DriverName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-x", ".x", "_x", "a/b", "../etc", "a b", "a\0b", "ä", "x:y",
        ] {
            assert!(DriverName::new(bad).is_err(), "{bad:?}");
        }
        assert!(DriverName::new(&"a".repeat(255)).is_ok());
        assert!(DriverName::new(&"a".repeat(256)).is_err());
    }

    #[test]
    fn driver_error_names_the_driver() {
        let err = DriverName::new("../etc").unwrap_err().to_string();
        assert!(err.contains("\"../etc\""), "{err}");
    }

    #[test]
    fn volume_names_follow_the_spec() {
        for ok in [
            "data",
            "es-1-data",
            "My Volume",
            "a:b",
            "x.y",
            "ünïcode",
            "..a",
            "a-",
        ] {
            assert!(VolumeName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-rf", "a/b", "/abs", "a\nb", "a\0b", "tab\t"] {
            assert!(VolumeName::new(bad).is_err(), "{bad:?}");
        }
        assert!(VolumeName::new(&"v".repeat(255)).is_ok());
        assert!(VolumeName::new(&"v".repeat(256)).is_err());
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<VolumeName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<VolumeName>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<DriverName>("\"../x\"").is_err());
    }
}
