//! The one table of settings: every setting of both front ends defined once — its module
//! parameter (the Mesos manifest, the C ABI's JSON), its `DVDI_` variable (`dvdcli`), its type,
//! default and rule — and one parser that reads it from either source.
//!
//! `dvdcli mount`/`unmount`/… use the client part of the result ([`Settings`]), `dvdcli exec`,
//! `inspect` and `recover` and the C ABI the whole [`IsolatorConfig`]; all of them parse the
//! whole table, so a value one of them refuses, every one of them refuses, with the same
//! words. README's Configuration table, `packaging/README.md` and `ffi/include/dvdi.h` list
//! every entry (a test walks the table).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Settings, Timeouts};
use crate::lifecycle::{Isolator, IsolatorConfig, IsolatorError, LogLevel};
use crate::names::DriverName;
use crate::protected::ProtectedDirs;

/// Which source a value came from; errors name the setting as that source spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A module parameter (`checkpoint_dir`): the manifest, or the C ABI's JSON object.
    Parameter,
    /// A `DVDI_` environment variable (`DVDI_CHECKPOINT_DIR`): `dvdcli`.
    Variable,
}

/// What a setting's value is; also how the C ABI joins a JSON array into one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An absolute path.
    Path,
    /// Absolute paths separated by `:`.
    PathList,
    /// A driver name.
    Driver,
    /// Driver names separated by `,`.
    DriverList,
    /// Seconds, fractions allowed, greater than 0.
    Seconds,
    /// A whole number of bytes.
    Bytes,
    /// The `size=` syntax: bytes, or a whole number with a `K`, `M` or `G` suffix.
    Size,
    /// `true` or `false`, any case.
    Bool,
    /// `:`-separated absolute directories, `default` or `none`.
    ProtectedDirs,
    /// `error`, `warning`, `info` or `debug`.
    LogLevel,
    /// Accepted and ignored.
    Ignored,
}

impl Kind {
    /// How the items of a list are joined into one value (a JSON array in the C ABI).
    pub fn list_separator(self) -> &'static str {
        match self {
            Kind::DriverList => ",",
            _ => ":",
        }
    }
}

/// One setting. The rows of [`SETTINGS`].
pub struct Setting {
    /// The module parameter's key.
    pub parameter: &'static str,
    /// The environment variable `dvdcli` reads; `None` for a parameter of the module only.
    pub variable: Option<&'static str>,
    pub kind: Kind,
    /// The default, as a value or, where there is none, as words (`any`, `—`).
    pub default: &'static str,
    /// What the setting does and which values it takes, in one line.
    pub rule: &'static str,
    /// A value it accepts (other than its default) and one it refuses (none: it takes any),
    /// for the tests that hold the two front ends to the table.
    pub examples: (&'static str, Option<&'static str>),
    apply: fn(&mut IsolatorConfig, &str) -> Result<(), String>,
}

impl Setting {
    /// The setting's name as `source` spells it.
    pub fn name(&self, source: Source) -> &'static str {
        match (source, self.variable) {
            (Source::Variable, Some(v)) => v,
            _ => self.parameter,
        }
    }

    /// The row whose parameter is `key`.
    pub fn by_parameter(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.parameter == key)
    }
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("parameter", &self.parameter)
            .field("variable", &self.variable)
            .field("kind", &self.kind)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// Every setting, in the order they are applied: `timeout` comes before the finer deadlines,
/// so they win over it whatever order the source gives them in.
pub const SETTINGS: &[Setting] = &[
    Setting {
        parameter: "checkpoint_dir",
        variable: Some("DVDI_CHECKPOINT_DIR"),
        kind: Kind::Path,
        default: crate::lifecycle::DEFAULT_CHECKPOINT_DIR,
        rule: "absolute path of the isolator's checkpoint (created 0700)",
        examples: ("/run/dvdi-example", Some("run/dvdi")),
        apply: |c, v| {
            c.checkpoint_dir = absolute(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "default_driver",
        variable: Some("DVDI_DEFAULT_DRIVER"),
        kind: Kind::Driver,
        default: crate::grammar::DEFAULT_DRIVER,
        rule: "driver of a volume without DVDI_VOLUME_DRIVER; a driver name",
        examples: ("local", Some("../x")),
        apply: |c, v| {
            c.default_driver = driver(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "allowed_drivers",
        variable: Some("DVDI_ALLOWED_DRIVERS"),
        kind: Kind::DriverList,
        default: "any",
        rule: "comma-separated driver names tasks may use; empty: any",
        examples: ("local, rexray", Some("ok,b/ad")),
        apply: |c, v| {
            let set: BTreeSet<DriverName> = v
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(driver)
                .collect::<Result<_, _>>()?;
            c.allowed_drivers = if set.is_empty() { None } else { Some(set) };
            Ok(())
        },
    },
    Setting {
        parameter: "plugin_dirs",
        variable: Some("DVDI_PLUGIN_DIRS"),
        kind: Kind::PathList,
        default: "/run/docker/plugins:/etc/docker/plugins:/usr/lib/docker/plugins",
        rule: "colon-separated absolute directories searched in order for plugins",
        examples: ("/a::/b", Some("plugins")),
        apply: |c, v| {
            let dirs: Vec<PathBuf> = v
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect();
            if dirs.is_empty() || dirs.iter().any(|d| !d.is_absolute()) {
                return Err("expected absolute directories separated by ':'".into());
            }
            c.settings.client.plugin_dirs = dirs;
            Ok(())
        },
    },
    Setting {
        parameter: "timeout",
        variable: Some("DVDI_TIMEOUT"),
        kind: Kind::Seconds,
        default: "—",
        rule: "seconds; sets every deadline below at once, the connect-retry window included",
        examples: ("2.5", Some("0")),
        apply: |c, v| {
            c.settings.client.timeouts = Timeouts::uniform(seconds(v)?);
            Ok(())
        },
    },
    Setting {
        parameter: "connect_timeout",
        variable: Some("DVDI_CONNECT_TIMEOUT"),
        kind: Kind::Seconds,
        default: "15",
        rule: "seconds in which a refused or missing plugin socket is retried",
        examples: ("2.5", Some("soon")),
        apply: |c, v| {
            c.settings.client.timeouts.connect_window = seconds(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "create_timeout",
        variable: Some("DVDI_CREATE_TIMEOUT"),
        kind: Kind::Seconds,
        default: "120",
        rule: "seconds allowed for VolumeDriver.Create",
        examples: ("2.5", Some("0")),
        apply: |c, v| {
            c.settings.client.timeouts.create = seconds(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "mount_timeout",
        variable: Some("DVDI_MOUNT_TIMEOUT"),
        kind: Kind::Seconds,
        default: "120",
        rule: "seconds allowed for VolumeDriver.Mount",
        examples: ("2.5", Some("-1")),
        apply: |c, v| {
            c.settings.client.timeouts.mount = seconds(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "other_timeout",
        variable: Some("DVDI_OTHER_TIMEOUT"),
        kind: Kind::Seconds,
        default: "60",
        rule: "seconds allowed for every other plugin call",
        examples: ("2.5", Some("inf")),
        apply: |c, v| {
            c.settings.client.timeouts.other = seconds(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "max_reply_bytes",
        variable: Some("DVDI_MAX_REPLY_BYTES"),
        kind: Kind::Bytes,
        default: "4194304",
        rule: "largest plugin reply body read, in bytes, at least 1024",
        examples: ("65536", Some("100")),
        apply: |c, v| {
            c.settings.client.max_reply_bytes = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= MIN_REPLY_BYTES)
                .ok_or_else(|| {
                    format!(
                        "expected a number of bytes >= {MIN_REPLY_BYTES} (default {})",
                        crate::config::DEFAULT_MAX_REPLY_BYTES
                    )
                })?;
            Ok(())
        },
    },
    Setting {
        parameter: "local_root",
        variable: Some("DVDI_LOCAL_ROOT"),
        kind: Kind::Path,
        default: crate::config::DEFAULT_LOCAL_ROOT,
        rule: "absolute path of the embedded local driver's volumes",
        examples: ("/srv/vols", Some("srv/vols")),
        apply: |c, v| {
            c.settings.local_root = absolute(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "local_max_size",
        variable: Some("DVDI_LOCAL_MAX_SIZE"),
        kind: Kind::Size,
        default: "the free space",
        rule: "largest new local block volume, in the size= syntax (100G)",
        examples: ("100G", Some("100GB")),
        apply: |c, v| {
            c.settings.local_max_size = Some(
                crate::local::parse_size(v.trim()).map_err(|_| {
                    "expected a size greater than 0: bytes, or a whole number with a K, M or G suffix (e.g. 100G), as size= takes"
                })?,
            );
            Ok(())
        },
    },
    Setting {
        parameter: "csi_config_dir",
        variable: Some("DVDI_CSI_CONFIG_DIR"),
        kind: Kind::Path,
        default: crate::config::DEFAULT_CSI_CONFIG_DIR,
        rule: "absolute directory of CSI plugin files: NAME.json makes driver NAME a CSI plugin",
        examples: ("/srv/csi.d", Some("csi.d")),
        apply: |c, v| {
            c.settings.csi_config_dir = absolute(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "csi_client",
        variable: Some("DVDI_CSI_CLIENT"),
        kind: Kind::Path,
        default: crate::config::DEFAULT_CSI_CLIENT,
        rule: "absolute path of the dvdi-csi program, which makes a CSI plugin's gRPC calls",
        examples: ("/opt/dvdi/dvdi-csi", Some("dvdi-csi")),
        apply: |c, v| {
            c.settings.csi_client = absolute(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "chown_volume_root",
        variable: Some("DVDI_CHOWN_VOLUME_ROOT"),
        kind: Kind::Bool,
        default: "false",
        rule: "true: give the volume root to the task's user",
        examples: ("TRUE", Some("yes")),
        apply: |c, v| {
            c.chown_volume_root = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "local_device_options",
        variable: Some("DVDI_LOCAL_DEVICE_OPTIONS"),
        kind: Kind::Bool,
        default: "false",
        rule: "true: a task's DVDI_VOLUME_OPTS may give the local driver type=/device=/o=",
        examples: ("true", Some("1")),
        apply: |c, v| {
            c.local_device_options = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "docker_volumes",
        variable: Some("DVDI_DOCKER_VOLUMES"),
        kind: Kind::Bool,
        default: "false",
        rule: "true: also serve Mesos' DOCKER_VOLUME volumes (ContainerInfo.volumes); remove docker/volume from --isolation first",
        examples: ("true", Some("on")),
        apply: |c, v| {
            c.docker_volumes = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "protected_host_dirs",
        variable: Some("DVDI_PROTECTED_HOST_DIRS"),
        kind: Kind::ProtectedDirs,
        default: "default",
        rule: "host directories an image-less container's absolute path may not cover: ':'-separated absolute directories, 'default' in it for the default list, or 'none'",
        examples: ("default:/srv/secrets", Some("")),
        apply: |c, v| {
            c.protected_host_dirs = ProtectedDirs::parse(v)?;
            Ok(())
        },
    },
    Setting {
        parameter: "log_level",
        variable: Some("DVDI_LOG_LEVEL"),
        kind: Kind::LogLevel,
        default: "info",
        rule: "error, warning, info or debug: records below it are not logged",
        examples: ("debug", Some("verbose")),
        apply: |c, v| {
            c.log_level = match v.trim().to_ascii_lowercase().as_str() {
                "error" => LogLevel::Error,
                "warning" => LogLevel::Warning,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                _ => return Err("expected error, warning, info or debug".into()),
            };
            Ok(())
        },
    },
    Setting {
        parameter: "work_dir",
        variable: None,
        kind: Kind::Ignored,
        default: "—",
        rule: "mesos-module-dvdi's parameter: accepted so old manifests load, ignored",
        examples: ("/tmp/mesos", None),
        apply: |_, _| Ok(()),
    },
];

/// The smallest `max_reply_bytes`: below it not even an error reply fits.
pub const MIN_REPLY_BYTES: usize = 1024;

/// A setting that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown module parameter(s) {}; known: {}", .keys.join(", "), known_parameters())]
    Unknown { keys: Vec<String> },
    /// `name` is the parameter or the variable, as the source spells it.
    #[error("invalid {name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

fn known_parameters() -> String {
    SETTINGS
        .iter()
        .map(|s| s.parameter)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A configuration read from one source, and notes for the host's log (ignored settings).
#[derive(Debug)]
pub struct Parsed {
    pub config: IsolatorConfig,
    pub notes: Vec<String>,
}

/// The one parser: `(name, value)` pairs of `source` — module parameter keys, or `DVDI_`
/// variables — applied to `base` in table order; of two pairs for one setting the later wins.
/// An unknown parameter key is an error naming every one at once; a variable that is not in
/// the table is not ours and is left alone.
pub fn parse(
    source: Source,
    pairs: &[(String, String)],
    mut base: IsolatorConfig,
) -> Result<Parsed, SettingError> {
    let find = |name: &str| SETTINGS.iter().find(|s| s.name(source) == name);
    if source == Source::Parameter {
        let unknown: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| find(k).is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !unknown.is_empty() {
            return Err(SettingError::Unknown { keys: unknown });
        }
    }
    let mut notes = Vec::new();
    for setting in SETTINGS {
        let name = setting.name(source);
        if source == Source::Variable && setting.variable.is_none() {
            continue;
        }
        let Some((_, value)) = pairs.iter().rev().find(|(k, _)| k == name) else {
            continue;
        };
        (setting.apply)(&mut base, value).map_err(|reason| SettingError::Invalid {
            name,
            value: value.clone(),
            reason,
        })?;
        if setting.kind == Kind::Ignored {
            notes.push(format!(
                "module parameter {name}={value:?} is accepted for mesos-module-dvdi compatibility and ignored; the checkpoint lives in {}",
                base.checkpoint_dir.display()
            ));
        }
    }
    Ok(Parsed {
        config: base,
        notes,
    })
}

/// [`parse`] of module parameters.
pub fn from_parameters(
    pairs: &[(String, String)],
    base: IsolatorConfig,
) -> Result<Parsed, SettingError> {
    parse(Source::Parameter, pairs, base)
}

/// [`parse`] of the `DVDI_` variables `lookup` finds (the process environment for `dvdcli`,
/// or a test's map).
pub fn from_env(
    lookup: impl Fn(&str) -> Option<String>,
    base: IsolatorConfig,
) -> Result<Parsed, SettingError> {
    let pairs: Vec<(String, String)> = SETTINGS
        .iter()
        .filter_map(|s| s.variable)
        .filter_map(|v| lookup(v).map(|value| (v.to_owned(), value)))
        .collect();
    parse(Source::Variable, &pairs, base)
}

impl IsolatorConfig {
    /// The isolator configuration of the `DVDI_` variables `lookup` finds, over the defaults.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let parsed = from_env(lookup, IsolatorConfig::default())?;
        let log = parsed.config.logger();
        for note in &parsed.notes {
            log.info(note);
        }
        Ok(parsed.config)
    }
}

impl Settings {
    /// The client settings of the whole table read through `lookup`: every `DVDI_` variable
    /// is checked, also those only the isolator uses, so `dvdcli mount` and `dvdcli exec`
    /// accept and refuse the same environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Ok(IsolatorConfig::from_env(lookup)?.settings)
    }

    /// `from_lookup` over the process environment.
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// Why an isolator could not be built from the environment.
#[derive(Debug, thiserror::Error)]
pub enum FromEnvError {
    #[error("bad configuration in the environment")]
    Settings(#[source] SettingError),
    #[error(transparent)]
    Isolator(#[from] IsolatorError),
}

impl Isolator {
    /// The isolator as `dvdcli exec`, `inspect` and `recover` see it: the `DVDI_` settings
    /// `lookup` finds (the process environment), the real host.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, FromEnvError> {
        let config = IsolatorConfig::from_env(lookup).map_err(FromEnvError::Settings)?;
        Ok(Isolator::from_config(config)?)
    }
}

fn absolute(value: &str) -> Result<PathBuf, String> {
    if !value.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    Ok(PathBuf::from(value))
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn driver(value: &str) -> Result<DriverName, String> {
    DriverName::new(value.trim()).map_err(|e| e.to_string())
}

/// Seconds, fractions allowed (`0.5`), strictly positive.
fn seconds(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds")?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err("must be a positive number of seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests;
