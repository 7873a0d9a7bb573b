//! Settings shared by every front end: plugin directories, deadlines, local-driver root and
//! size cap.
//!
//! Each field has a default matching Docker's behaviour; [`crate::settings`] reads them, from
//! the environment (`Settings::from_env`) or from module parameters (the C ABI's JSON).

use std::path::PathBuf;
use std::time::Duration;

/// Where plugin sockets and spec files are looked for, in order (SPEC §2).
pub const DEFAULT_PLUGIN_DIRS: [&str; 3] = [
    "/run/docker/plugins",
    "/etc/docker/plugins",
    "/usr/lib/docker/plugins",
];
/// Root of the embedded `local` driver's volumes.
pub const DEFAULT_LOCAL_ROOT: &str = "/var/lib/dvdi/volumes";
/// Where operators put one file per CSI plugin (`csi_config_dir`).
pub const DEFAULT_CSI_CONFIG_DIR: &str = "/etc/dvdi/csi.d";
/// Where the `.deb` installs the `dvdi-csi` program (`csi_client`).
pub const DEFAULT_CSI_CLIENT: &str = "/usr/libexec/dvdi/dvdi-csi";
/// Largest plugin reply body we read (a `List` of many volumes still fits).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 << 20;

/// Deadlines for plugin calls. Docker's defaults: connection failures retried for ~15 s,
/// 2 min for Create and Mount, 1 min for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long connection failures (refused, socket missing) are retried with back-off.
    pub connect_window: Duration,
    pub create: Duration,
    pub mount: Duration,
    /// Every other endpoint.
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_window: Duration::from_secs(15),
            create: Duration::from_secs(120),
            mount: Duration::from_secs(120),
            other: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// Every deadline, the connect-retry window included, set to `limit` (`DVDI_TIMEOUT`).
    pub fn uniform(limit: Duration) -> Self {
        Self {
            connect_window: limit,
            create: limit,
            mount: limit,
            other: limit,
        }
    }
}

/// How the plugin client finds and talks to plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub plugin_dirs: Vec<PathBuf>,
    pub timeouts: Timeouts,
    pub max_reply_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            plugin_dirs: DEFAULT_PLUGIN_DIRS.iter().map(PathBuf::from).collect(),
            timeouts: Timeouts::default(),
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

/// Everything a front end needs to reach drivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub client: ClientConfig,
    pub local_root: PathBuf,
    /// The operator's cap on the size of a new `local` block volume, in bytes
    /// (`local_max_size`). Whether set or not, no block volume is created larger than the
    /// free space of the local root's filesystem.
    pub local_max_size: Option<u64>,
    /// Where CSI plugins are configured, one `NAME.json` each (`csi_config_dir`).
    pub csi_config_dir: PathBuf,
    /// The `dvdi-csi` program (`csi_client`).
    pub csi_client: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            local_root: PathBuf::from(DEFAULT_LOCAL_ROOT),
            local_max_size: None,
            csi_config_dir: PathBuf::from(DEFAULT_CSI_CONFIG_DIR),
            csi_client: PathBuf::from(DEFAULT_CSI_CLIENT),
        }
    }
}

impl Settings {
    /// Whether `csi_config_dir` holds a CSI plugin file (any `*.json`).
    pub fn has_csi_plugins(&self) -> bool {
        std::fs::read_dir(&self.csi_config_dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().as_encoded_bytes().ends_with(b".json"))
        })
    }

    /// The program a build without CSI (`dvdcli` as the `.deb` ships it) hands a command to
    /// on a host with CSI plugins: `dvdcli-csi`, beside `csi_client`. `None` when this build
    /// serves CSI itself or the host has no CSI plugin file.
    pub fn csi_handoff(&self) -> Option<PathBuf> {
        (!crate::CSI_BUILT_IN && self.has_csi_plugins())
            .then(|| self.csi_client.with_file_name("dvdcli-csi"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    // `Settings::from_lookup` is the settings table's parser (`crate::settings`), which
    // depends on this module; its error is named through the method so that this module
    // does not depend back on it.
    fn settings(
        vars: &[(&str, &str)],
    ) -> Result<Settings, impl std::fmt::Display + std::fmt::Debug> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_dockers() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.client.timeouts.mount, Duration::from_secs(120));
        assert_eq!(s.client.timeouts.other, Duration::from_secs(60));
        assert_eq!(
            s.client.plugin_dirs[0],
            PathBuf::from("/run/docker/plugins")
        );
        assert_eq!(s.local_root, PathBuf::from("/var/lib/dvdi/volumes"));
        assert_eq!(s.local_max_size, None, "no explicit cap");
    }

    #[test]
    fn local_max_size_takes_the_size_syntax() {
        for (v, bytes) in [
            ("100G", 100 << 30),
            ("64m", 64 << 20),
            ("4096", 4096),
            (" 2K ", 2048),
        ] {
            let s = settings(&[("DVDI_LOCAL_MAX_SIZE", v)]).unwrap();
            assert_eq!(s.local_max_size, Some(bytes), "{v}");
        }
        for bad in ["", "0", "100GB", "1.5G", "-1", "lots", "17179869184G"] {
            let err = settings(&[("DVDI_LOCAL_MAX_SIZE", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("DVDI_LOCAL_MAX_SIZE") && err.contains("K, M or G"),
                "{err}"
            );
        }
    }

    #[test]
    fn dvdi_timeout_sets_every_deadline_and_finer_ones_override() {
        let s = settings(&[("DVDI_TIMEOUT", "2.5"), ("DVDI_MOUNT_TIMEOUT", "7")]).unwrap();
        let t = s.client.timeouts;
        assert_eq!(t.connect_window, Duration::from_millis(2500));
        assert_eq!(t.other, Duration::from_millis(2500));
        assert_eq!(t.mount, Duration::from_secs(7));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("DVDI_TIMEOUT", "soon"),
            ("DVDI_TIMEOUT", "0"),
            ("DVDI_LOCAL_ROOT", "rel"),
        ] {
            let err = settings(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(k), "{err}");
        }
    }

    #[test]
    fn plugin_dirs_are_colon_separated_in_order() {
        let s = settings(&[("DVDI_PLUGIN_DIRS", "/a::/b")]).unwrap();
        assert_eq!(
            s.client.plugin_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn csi_plugins_are_files_ending_in_json_and_a_build_with_csi_hands_nothing_over() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            csi_config_dir: dir.path().to_owned(),
            ..Settings::default()
        };
        assert!(!settings.has_csi_plugins());
        std::fs::write(dir.path().join("README"), "").unwrap();
        assert!(!settings.has_csi_plugins());
        std::fs::write(dir.path().join("ebs.json"), "{}").unwrap();
        assert!(settings.has_csi_plugins());
        assert_eq!(settings.csi_handoff(), None, "this build serves CSI itself");
        let missing = Settings {
            csi_config_dir: dir.path().join("none"),
            ..Settings::default()
        };
        assert!(!missing.has_csi_plugins());
    }
}
