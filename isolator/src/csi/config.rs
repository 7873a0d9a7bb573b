//! The operator's description of one CSI plugin: `<csi_config_dir>/<driver>.json`.
//!
//! ```json
//! {
//!   "node_endpoint": "unix:///run/csi/ebs/csi.sock",
//!   "controller_endpoint": "unix:///run/csi/ebs/csi.sock",
//!   "root": "/var/lib/dvdi/csi/ebs",
//!   "plugin_name": "ebs.csi.aws.com",
//!   "fs_type": "ext4",
//!   "mount_flags": ["noatime"],
//!   "parameters": {"type": "gp3"},
//!   "controller_secrets": "/etc/dvdi/csi-secrets/ebs-controller.json",
//!   "node_secrets": "/etc/dvdi/csi-secrets/ebs-node.json"
//! }
//! ```
//!
//! Only `node_endpoint` and `root` are required. The file names the plugin, never the task:
//! a task names only the driver. Files are read without following a symlink, at most 64 KiB,
//! and an unknown key is an error (a misspelt `controler_endpoint` must not silently turn a
//! controller plugin into a node-only one). A secrets file must be a regular file that only
//! its owner can read (mode `0600` or stricter, owned by root or by this process's user),
//! holding one JSON object of strings.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::wire::Endpoint;
use crate::discovery::{self, PluginAddr};
use crate::names::DriverName;

/// The most bytes read of a configuration or secrets file.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// One CSI plugin, as the operator configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsiConfig {
    pub driver: DriverName,
    /// The file it came from (named in errors).
    pub file: PathBuf,
    pub node: Endpoint,
    pub controller: Option<Endpoint>,
    /// Where this host's staging directories and publish targets are made.
    pub root: PathBuf,
    pub plugin_name: Option<String>,
    pub fs_type: Option<String>,
    pub mount_flags: Vec<String>,
    pub parameters: BTreeMap<String, String>,
    pub controller_secrets: Option<PathBuf>,
    pub node_secrets: Option<PathBuf>,
}

/// The file as written; [`CsiConfig`] once checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_endpoint: String,
    controller_endpoint: Option<String>,
    root: PathBuf,
    plugin_name: Option<String>,
    fs_type: Option<String>,
    #[serde(default)]
    mount_flags: Vec<String>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    controller_secrets: Option<PathBuf>,
    node_secrets: Option<PathBuf>,
}

/// Why a CSI plugin's configuration cannot be used. Every variant names the driver and file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("CSI plugin {driver:?}: cannot read {}: {cause}", .path.display())]
    Read {
        driver: String,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("CSI plugin {driver:?}: {}: {reason}", .path.display())]
    Bad {
        driver: String,
        path: PathBuf,
        reason: String,
    },
}

impl CsiConfig {
    /// The path `driver`'s configuration would have in `dir`.
    #[cold]
    pub fn path_in(dir: &Path, driver: &DriverName) -> PathBuf {
        dir.join(format!("{}.json", driver.as_str()))
    }

    /// Reads `driver`'s configuration from `dir`: `Ok(None)` when there is no such file (the
    /// name is not a CSI plugin's).
    #[cold]
    pub fn find(dir: &Path, driver: &DriverName) -> Result<Option<CsiConfig>, ConfigError> {
        let path = Self::path_in(dir, driver);
        let text = match read_small(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(ConfigError::Read {
                    driver: driver.to_string(),
                    path,
                    cause,
                })
            }
        };
        Self::parse(driver, &path, &text).map(Some)
    }

    /// Parses the bytes of `path` (named in errors): a public entry point for tests and fuzzing.
    #[cold]
    pub fn parse(driver: &DriverName, path: &Path, text: &[u8]) -> Result<CsiConfig, ConfigError> {
        let bad = |reason: String| ConfigError::Bad {
            driver: driver.to_string(),
            path: path.to_owned(),
            reason,
        };
        let raw: RawConfig = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        let endpoint = |key: &str, url: &str| -> Result<Endpoint, ConfigError> {
            match discovery::parse_url(driver, path, url) {
                Ok(PluginAddr::Unix(p)) => Ok(Endpoint::Unix(p)),
                Ok(PluginAddr::Tcp(h)) if key == "controller_endpoint" => Ok(Endpoint::Tcp(h)),
                Ok(PluginAddr::Tcp(_)) => Err(bad(format!(
                    "{key} must be a unix:// address (a node plugin runs on this host)"
                ))),
                Err(e) => Err(bad(format!("{key}: {e}"))),
            }
        };
        let node = endpoint("node_endpoint", &raw.node_endpoint)?;
        let controller = raw
            .controller_endpoint
            .as_deref()
            .map(|u| endpoint("controller_endpoint", u))
            .transpose()?;
        if !is_clean_absolute(&raw.root) {
            return Err(bad(format!(
                "root {:?} must be an absolute path in normal form",
                raw.root
            )));
        }
        for (key, p) in [
            ("controller_secrets", &raw.controller_secrets),
            ("node_secrets", &raw.node_secrets),
        ] {
            if p.as_deref().is_some_and(|p| !is_clean_absolute(p)) {
                return Err(bad(format!(
                    "{key} must be an absolute path in normal form"
                )));
            }
        }
        let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
        if let Some(fs) = raw.fs_type.as_deref().filter(|f| !printable(f)) {
            return Err(bad(format!(
                "fs_type {fs:?} is empty or has control characters"
            )));
        }
        if let Some(flag) = raw.mount_flags.iter().find(|f| !printable(f)) {
            return Err(bad(format!(
                "mount flag {flag:?} is empty or has control characters"
            )));
        }
        Ok(CsiConfig {
            driver: driver.clone(),
            file: path.to_owned(),
            node,
            controller,
            root: raw.root,
            plugin_name: raw.plugin_name,
            fs_type: raw.fs_type,
            mount_flags: raw.mount_flags,
            parameters: raw.parameters,
            controller_secrets: raw.controller_secrets,
            node_secrets: raw.node_secrets,
        })
    }

    /// Reads one of the secrets files (`None`: none configured, no secrets).
    #[cold]
    pub fn read_secrets(
        &self,
        path: Option<&Path>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let Some(path) = path else {
            return Ok(BTreeMap::new());
        };
        let bad = |reason: String| ConfigError::Bad {
            driver: self.driver.to_string(),
            path: path.to_owned(),
            reason,
        };
        let file = open_nofollow(path).map_err(|cause| ConfigError::Read {
            driver: self.driver.to_string(),
            path: path.to_owned(),
            cause,
        })?;
        let meta = file.metadata().map_err(|cause| ConfigError::Read {
            driver: self.driver.to_string(),
            path: path.to_owned(),
            cause,
        })?;
        let euid = nix::unistd::geteuid().as_raw();
        if meta.mode() & 0o077 != 0 || (meta.uid() != 0 && meta.uid() != euid) {
            return Err(bad(format!(
                "a secrets file must be readable by its owner alone and owned by root (mode {:o}, owner {})",
                meta.mode() & 0o7777,
                meta.uid()
            )));
        }
        let bytes = read_all(file).map_err(|cause| ConfigError::Read {
            driver: self.driver.to_string(),
            path: path.to_owned(),
            cause,
        })?;
        // The error names the file and never quotes it: serde's message gives a position only.
        serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not a JSON object of strings (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}

/// An absolute path with no `.`, `..` or empty components.
#[cold]
fn is_clean_absolute(p: &Path) -> bool {
    let text = p.as_os_str().as_encoded_bytes();
    p.is_absolute()
        && !text.windows(2).any(|w| w == b"//")
        && (text.len() == 1 || !text.ends_with(b"/"))
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

#[cold]
fn open_nofollow(path: &Path) -> io::Result<File> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

#[cold]
fn read_all(file: File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "larger than 64 KiB",
        ));
    }
    Ok(bytes)
}

#[cold]
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    read_all(open_nofollow(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CsiConfig, ConfigError> {
        CsiConfig::parse(
            &DriverName::new("ebs").unwrap(),
            Path::new("/etc/dvdi/csi.d/ebs.json"),
            text.as_bytes(),
        )
    }

    #[test]
    fn a_full_file_is_read_and_only_node_endpoint_and_root_are_required() {
        let c = parse(
            r#"{"node_endpoint":"unix:///run/csi.sock","controller_endpoint":"tcp://ctl:9000",
                "root":"/var/lib/dvdi/csi/ebs","plugin_name":"ebs.csi","fs_type":"xfs",
                "mount_flags":["noatime"],"parameters":{"type":"gp3"},
                "node_secrets":"/etc/dvdi/n.json"}"#,
        )
        .unwrap();
        assert_eq!(c.node, Endpoint::Unix("/run/csi.sock".into()));
        assert_eq!(c.controller, Some(Endpoint::Tcp("ctl:9000".into())));
        assert_eq!(c.fs_type.as_deref(), Some("xfs"));
        assert_eq!(c.parameters["type"], "gp3");
        let min = parse(r#"{"node_endpoint":"unix:///s","root":"/r"}"#).unwrap();
        assert_eq!((min.controller, min.fs_type), (None, None));
    }

    #[test]
    fn every_bad_file_is_an_error_naming_driver_file_and_key() {
        for (text, words) in [
            (r#"{"node_endpoint":"unix:///s"}"#, "missing field `root`"),
            (
                r#"{"node_endpoint":"unix:///s","root":"/r","controler_endpoint":"unix:///c"}"#,
                "unknown field `controler_endpoint`",
            ),
            (
                r#"{"node_endpoint":"tcp://h:1","root":"/r"}"#,
                "node_endpoint must be a unix://",
            ),
            (
                r#"{"node_endpoint":"unix://s","root":"/r"}"#,
                "node_endpoint",
            ),
            (r#"{"node_endpoint":"unix:///s","root":"r"}"#, "root \"r\""),
            (r#"{"node_endpoint":"unix:///s","root":"/a/../b"}"#, "root"),
            (
                r#"{"node_endpoint":"unix:///s","root":"/r","controller_endpoint":"https://h:1"}"#,
                "controller_endpoint",
            ),
            (
                r#"{"node_endpoint":"unix:///s","root":"/r","node_secrets":"rel"}"#,
                "node_secrets",
            ),
            (
                r#"{"node_endpoint":"unix:///s","root":"/r","fs_type":"ext4\n"}"#,
                "fs_type",
            ),
            (
                r#"{"node_endpoint":"unix:///s","root":"/r","mount_flags":[""]}"#,
                "mount flag",
            ),
            ("not json", "expected"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("CSI plugin \"ebs\": /etc/dvdi/csi.d/ebs.json: ")
                    && e.contains(words),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn files_are_never_read_through_a_symlink_and_secrets_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ebs = DriverName::new("ebs").unwrap();
        assert!(CsiConfig::find(dir.path(), &ebs).unwrap().is_none());
        let real = dir.path().join("real.json");
        std::fs::write(&real, r#"{"node_endpoint":"unix:///s","root":"/r"}"#).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("ebs.json")).unwrap();
        let e = CsiConfig::find(dir.path(), &ebs).unwrap_err().to_string();
        assert!(e.contains("ebs.json"), "{e}");

        let config = parse(r#"{"node_endpoint":"unix:///s","root":"/r"}"#).unwrap();
        let secrets = dir.path().join("secrets.json");
        std::fs::write(&secrets, r#"{"token":"hunter2"}"#).unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = config.read_secrets(Some(&secrets)).unwrap_err().to_string();
        assert!(
            e.contains("readable by its owner alone") && !e.contains("hunter2"),
            "{e}"
        );
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            config.read_secrets(Some(&secrets)).unwrap()["token"],
            "hunter2"
        );
        std::fs::write(&secrets, r#"{"token":1, "x":"hunter2"}"#).unwrap();
        let e = config.read_secrets(Some(&secrets)).unwrap_err().to_string();
        assert!(
            e.contains("JSON object of strings") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(config.read_secrets(None).unwrap().is_empty());
    }
}
