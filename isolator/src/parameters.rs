//! The isolator's module parameters (the Mesos modules manifest's `key`/`value` pairs) turned
//! into an [`IsolatorConfig`]. One table, documented in `packaging/README.md`; unknown keys
//! are an error that names them, and DVDI's `work_dir` is accepted and ignored.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::config::{parse_local_max_size, parse_seconds, DEFAULT_MAX_REPLY_BYTES};
use crate::lifecycle::IsolatorConfig;
use crate::names::DriverName;
use crate::protected::ProtectedDirs;

/// Every key `from_parameters` understands.
pub const KEYS: [&str; 17] = [
    "checkpoint_dir",
    "default_driver",
    "plugin_dirs",
    "timeout",
    "connect_timeout",
    "create_timeout",
    "mount_timeout",
    "other_timeout",
    "max_reply_bytes",
    "local_root",
    "local_max_size",
    "allowed_drivers",
    "chown_volume_root",
    "local_device_options",
    "protected_host_dirs",
    "work_dir",
    "log_level",
];

/// A parameter that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("unknown module parameter(s) {}; known: {}", .keys.join(", "), KEYS.join(", "))]
    Unknown { keys: Vec<String> },
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ParameterError {
    ParameterError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn absolute(key: &str, value: &str) -> Result<PathBuf, ParameterError> {
    if !value.starts_with('/') {
        return Err(invalid(key, value, "must be an absolute path"));
    }
    Ok(PathBuf::from(value))
}

fn boolean(key: &str, value: &str) -> Result<bool, ParameterError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

fn driver(key: &str, value: &str) -> Result<DriverName, ParameterError> {
    DriverName::new(value.trim()).map_err(|e| invalid(key, value, e.to_string()))
}

/// Builds a configuration from `(key, value)` pairs, later pairs overriding earlier ones.
/// Messages about accepted-but-ignored keys are returned for the host's log.
pub fn from_parameters(
    pairs: &[(String, String)],
    mut config: IsolatorConfig,
) -> Result<(IsolatorConfig, Vec<String>), ParameterError> {
    let unknown: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| !KEYS.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(ParameterError::Unknown { keys: unknown });
    }
    let mut notes = Vec::new();
    // `timeout` sets every deadline; the finer keys then win whatever their order.
    let mut ordered: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| k == "timeout").collect();
    ordered.extend(pairs.iter().filter(|(k, _)| k != "timeout"));
    for (key, value) in ordered {
        let seconds = |v: &str| {
            parse_seconds("timeout", v).map_err(|e| invalid(key, value, e.reason.to_string()))
        };
        let t = &mut config.settings.client.timeouts;
        match key.as_str() {
            "checkpoint_dir" => config.checkpoint_dir = absolute(key, value)?,
            "default_driver" => config.default_driver = driver(key, value)?,
            "plugin_dirs" => {
                let dirs: Vec<PathBuf> =
                    value.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect();
                if dirs.is_empty() || dirs.iter().any(|d| !d.is_absolute()) {
                    return Err(invalid(key, value, "expected absolute directories separated by ':'"));
                }
                config.settings.client.plugin_dirs = dirs;
            }
            "timeout" => *t = crate::config::Timeouts::uniform(seconds(value)?),
            "connect_timeout" => t.connect_window = seconds(value)?,
            "create_timeout" => t.create = seconds(value)?,
            "mount_timeout" => t.mount = seconds(value)?,
            "other_timeout" => t.other = seconds(value)?,
            "max_reply_bytes" => {
                config.settings.client.max_reply_bytes = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| invalid(key, value, format!("expected a number of bytes >= 1024 (default {DEFAULT_MAX_REPLY_BYTES})")))?;
            }
            "local_root" => config.settings.local_root = absolute(key, value)?,
            "local_max_size" => {
                config.settings.local_max_size = Some(
                    parse_local_max_size("local_max_size", value)
                        .map_err(|e| invalid(key, value, e.reason))?,
                )
            }
            "allowed_drivers" => {
                let set: BTreeSet<DriverName> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| driver(key, d))
                    .collect::<Result<_, _>>()?;
                config.allowed_drivers = if set.is_empty() { None } else { Some(set) };
            }
            "chown_volume_root" => config.chown_volume_root = boolean(key, value)?,
            "local_device_options" => config.local_device_options = boolean(key, value)?,
            "protected_host_dirs" => {
                config.protected_host_dirs =
                    ProtectedDirs::parse(value).map_err(|reason| invalid(key, value, reason))?
            }
            "work_dir" => notes.push(format!(
                "module parameter work_dir={value:?} is accepted for mesos-module-dvdi compatibility and ignored; the checkpoint lives in {}",
                config.checkpoint_dir.display()
            )),
            "log_level" => {
                if !matches!(value.trim(), "error" | "warning" | "info") {
                    return Err(invalid(key, value, "expected error, warning or info"));
                }
            }
            _ => unreachable!("unknown keys were refused above"),
        }
    }
    Ok((config, notes))
}

/// The environment variable that sets a parameter for `dvdcli`: `DVDI_` + the key in capitals
/// (`checkpoint_dir` → `DVDI_CHECKPOINT_DIR`), so both front ends share one table.
pub fn env_name(key: &str) -> String {
    format!("DVDI_{}", key.to_ascii_uppercase())
}

/// [`from_parameters`] over the `DVDI_*` variables that `lookup` finds (the process
/// environment for `dvdcli`); errors name the variable rather than the parameter.
pub fn from_env(
    lookup: impl Fn(&str) -> Option<String>,
    config: IsolatorConfig,
) -> Result<(IsolatorConfig, Vec<String>), ParameterError> {
    let pairs: Vec<(String, String)> = KEYS
        .iter()
        .filter(|k| !matches!(**k, "work_dir" | "log_level"))
        .filter_map(|k| lookup(&env_name(k)).map(|v| (k.to_string(), v)))
        .collect();
    from_parameters(&pairs, config).map_err(|e| match e {
        ParameterError::Invalid { key, value, reason } => ParameterError::Invalid {
            key: env_name(&key),
            value,
            reason,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_key_is_read() {
        let (c, notes) = from_parameters(
            &pairs(&[
                ("checkpoint_dir", "/run/x"),
                ("default_driver", "local"),
                ("plugin_dirs", "/a:/b"),
                ("mount_timeout", "5"),
                ("timeout", "30"),
                ("local_root", "/srv/vols"),
                ("allowed_drivers", "local, rexray"),
                ("chown_volume_root", "TRUE"),
                ("local_device_options", "true"),
                ("work_dir", "/tmp/mesos"),
                ("max_reply_bytes", "65536"),
                ("local_max_size", "100G"),
                ("protected_host_dirs", "default:/srv/secrets"),
            ]),
            IsolatorConfig::default(),
        )
        .unwrap();
        assert_eq!(c.checkpoint_dir, PathBuf::from("/run/x"));
        assert_eq!(c.default_driver.as_str(), "local");
        assert_eq!(c.settings.client.plugin_dirs.len(), 2);
        assert_eq!(
            c.settings.client.timeouts.mount,
            Duration::from_secs(5),
            "finer key wins over timeout"
        );
        assert_eq!(c.settings.client.timeouts.other, Duration::from_secs(30));
        assert_eq!(c.settings.local_root, PathBuf::from("/srv/vols"));
        assert_eq!(c.allowed_drivers.unwrap().len(), 2);
        assert!(c.chown_volume_root);
        assert!(c.local_device_options);
        assert_eq!(c.settings.client.max_reply_bytes, 65536);
        assert_eq!(c.settings.local_max_size, Some(100 << 30));
        assert!(c
            .protected_host_dirs
            .covering(std::path::Path::new("/srv/secrets/x"))
            .is_some());
        assert!(notes[0].contains("work_dir"));
    }

    #[test]
    fn unknown_keys_are_named_all_at_once() {
        let err = from_parameters(
            &pairs(&[("bogus", "1"), ("also", "2")]),
            IsolatorConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus") && err.contains("also"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("checkpoint_dir", "relative"),
            ("default_driver", "../x"),
            ("timeout", "soon"),
            ("chown_volume_root", "yes"),
            ("local_device_options", "1"),
            ("allowed_drivers", "ok,b/ad"),
            ("plugin_dirs", "rel"),
            ("local_max_size", "big"),
            ("protected_host_dirs", "etc"),
        ] {
            let err = from_parameters(&pairs(&[(k, v)]), IsolatorConfig::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(k), "{err}");
        }
    }

    /// A module parameter and its `DVDI_` variable go through the same code: they accept the
    /// same values with the same result, and refuse the same values, each naming itself.
    fn same_through_both_paths<T: PartialEq + std::fmt::Debug>(
        key: &str,
        values: &[&str],
        field: impl Fn(&IsolatorConfig) -> T,
    ) -> Vec<Result<T, String>> {
        let var = env_name(key);
        values
            .iter()
            .map(|value| {
                let by_parameter =
                    from_parameters(&pairs(&[(key, value)]), IsolatorConfig::default());
                let by_variable = from_env(
                    |k| (k == var).then(|| value.to_string()),
                    IsolatorConfig::default(),
                );
                match (by_parameter, by_variable) {
                    (Ok((a, _)), Ok((b, _))) => {
                        assert_eq!(field(&a), field(&b), "{key}={value:?}");
                        Ok(field(&a))
                    }
                    (Err(a), Err(b)) => {
                        let (a, b) = (a.to_string(), b.to_string());
                        assert!(a.contains(key) && !a.contains(&var), "{a}");
                        assert!(b.contains(&var), "{b}");
                        assert_eq!(
                            a.split_once(':').map(|x| x.1),
                            b.split_once(':').map(|x| x.1),
                            "same reason"
                        );
                        Err(a)
                    }
                    (a, b) => panic!("{key}={value:?}: parameter {a:?} but variable {b:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn protected_host_dirs_read_the_same_from_a_parameter_and_a_variable() {
        use crate::protected::ProtectedDirs;
        let values = [
            "default",
            "none",
            "/etc",
            "default:/srv/secrets",
            " /etc : /usr/ ",
            "/",
            "",
            " ",
            ":",
            "etc",
            "none:/etc",
            "/srv/../etc",
        ];
        let got = same_through_both_paths("protected_host_dirs", &values, |c| {
            c.protected_host_dirs.clone()
        });
        assert_eq!(got[0], Ok(ProtectedDirs::default()));
        assert_eq!(got[1], Ok(ProtectedDirs::none()));
        assert_eq!(got[3].as_ref().unwrap().dirs().len(), 16);
        assert_eq!(got[4], Ok(ProtectedDirs::parse("/etc:/usr").unwrap()));
        assert!(got[6..].iter().all(Result::is_err), "{got:?}");
        assert_eq!(
            IsolatorConfig::default().protected_host_dirs,
            ProtectedDirs::default(),
            "on unless the operator says otherwise"
        );
    }

    #[test]
    fn local_max_size_reads_the_same_from_a_parameter_a_variable_and_dvdcli_settings() {
        let values = [
            "100G", "64m", " 2K ", "4096", "", "0", "100GB", "1.5G", "lots", "-1",
        ];
        let got = same_through_both_paths("local_max_size", &values, |c| c.settings.local_max_size);
        assert_eq!(got[0], Ok(Some(100 << 30)));
        assert_eq!(got[2], Ok(Some(2048)));
        assert!(got[4..].iter().all(Result::is_err), "{got:?}");
        assert_eq!(IsolatorConfig::default().settings.local_max_size, None);
        // `dvdcli create`/`mount` read DVDI_LOCAL_MAX_SIZE through `Settings`: same answers.
        for (value, want) in values.iter().zip(&got) {
            let settings = crate::config::Settings::from_lookup(|k| {
                (k == "DVDI_LOCAL_MAX_SIZE").then(|| value.to_string())
            });
            match (settings, want) {
                (Ok(s), Ok(cap)) => assert_eq!(&s.local_max_size, cap, "{value:?}"),
                (Err(e), Err(_)) => assert!(e.to_string().contains("DVDI_LOCAL_MAX_SIZE")),
                (s, w) => panic!("{value:?}: settings {s:?}, parameters {w:?}"),
            }
        }
    }

    #[test]
    fn environment_variables_are_the_keys_in_capitals() {
        let env = |k: &str| match k {
            "DVDI_CHECKPOINT_DIR" => Some("/run/dvdi-test".to_string()),
            "DVDI_TIMEOUT" => Some("bad".to_string()),
            _ => None,
        };
        let err = from_env(env, IsolatorConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("DVDI_TIMEOUT"), "{err}");
        let env = |k: &str| (k == "DVDI_CHECKPOINT_DIR").then(|| "/run/dvdi-test".to_string());
        let (c, _) = from_env(env, IsolatorConfig::default()).unwrap();
        assert_eq!(c.checkpoint_dir, PathBuf::from("/run/dvdi-test"));
        assert!(!c.local_device_options, "off unless the operator allows it");
        let env = |k: &str| (k == "DVDI_LOCAL_DEVICE_OPTIONS").then(|| "true".to_string());
        assert!(
            from_env(env, IsolatorConfig::default())
                .unwrap()
                .0
                .local_device_options
        );
    }
}
