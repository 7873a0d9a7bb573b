//! The table's parser, from both sources.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

/// The parser's answer as a pair, as these tests read it.
fn from_parameters(
    pairs: &[(String, String)],
    base: IsolatorConfig,
) -> Result<(IsolatorConfig, Vec<String>), SettingError> {
    super::from_parameters(pairs, base).map(|p| (p.config, p.notes))
}

fn from_env(
    lookup: impl Fn(&str) -> Option<String>,
    base: IsolatorConfig,
) -> Result<(IsolatorConfig, Vec<String>), SettingError> {
    super::from_env(lookup, base).map(|p| (p.config, p.notes))
}

/// The variable of a parameter.
fn env_name(key: &str) -> &'static str {
    Setting::by_parameter(key)
        .and_then(|s| s.variable)
        .expect("a setting with a variable")
}

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
            let by_parameter = from_parameters(&pairs(&[(key, value)]), IsolatorConfig::default());
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
                    assert!(a.contains(key) && !a.contains(var), "{a}");
                    assert!(b.contains(var), "{b}");
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

/// The file at `path` from the workspace root.
fn workspace_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether `text` has `word` standing alone (not inside a longer name).
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word)
        .any(|(i, _)| !text[..i].ends_with(ident) && !text[i + word.len()..].starts_with(ident))
}

#[test]
fn every_setting_is_documented_where_operators_and_hosts_look() {
    let readme = workspace_file("README.md");
    let module = workspace_file("packaging/README.md");
    let header = workspace_file("ffi/include/dvdi.h");
    let dict = workspace_file("fuzz/dict/ffi_json.dict");
    let mut missing = Vec::new();
    for s in SETTINGS {
        if let Some(var) = s.variable {
            if !readme.contains(&format!("| `{var}` |")) {
                missing.push(format!("{var} in README.md's Configuration table"));
            }
        }
        if !module.contains(&format!("| `{}` |", s.parameter)) {
            missing.push(format!(
                "{} in packaging/README.md's parameters",
                s.parameter
            ));
        }
        if !has_word(&header, s.parameter) {
            missing.push(format!("{} in ffi/include/dvdi.h", s.parameter));
        }
        if !dict.contains(&format!("\"\\\"{}\\\"\"", s.parameter)) {
            missing.push(format!("{} in fuzz/dict/ffi_json.dict", s.parameter));
        }
    }
    assert!(missing.is_empty(), "not documented: {missing:#?}");
}

#[test]
fn the_tables_defaults_are_the_defaults() {
    let default = format!("{:?}", IsolatorConfig::default());
    for s in SETTINGS {
        // Words for "no value": the setting has no default value to parse.
        if matches!(s.default, "—" | "any" | "the free space") {
            continue;
        }
        let (c, _) = from_parameters(
            &pairs(&[(s.parameter, s.default)]),
            IsolatorConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{}: default {:?}: {e}", s.parameter, s.default));
        assert_eq!(format!("{c:?}"), default, "{}={}", s.parameter, s.default);
    }
    assert_eq!(
        Setting::by_parameter("plugin_dirs").unwrap().default,
        crate::config::DEFAULT_PLUGIN_DIRS.join(":")
    );
}

#[test]
fn names_are_unique_and_variables_are_the_parameters_in_capitals() {
    let mut seen = BTreeSet::new();
    for s in SETTINGS {
        assert!(seen.insert(s.parameter), "{} twice", s.parameter);
        if let Some(var) = s.variable {
            assert_eq!(var, format!("DVDI_{}", s.parameter.to_ascii_uppercase()));
        }
    }
}

/// For each setting, a value both sources accept and one both refuse (the refusal names the
/// setting as its source spells it, with the same reason). The black-box twin of this test,
/// through `dvdcli mount` and `dvdcli exec`, is `tests/tests/dvdcli_settings.rs`.
#[test]
fn every_setting_accepts_and_refuses_the_same_values_from_both_sources() {
    for s in SETTINGS {
        let Some(var) = s.variable else {
            assert_eq!(s.kind, Kind::Ignored, "{} has no variable", s.parameter);
            continue;
        };
        let (good, Some(bad)) = s.examples else {
            panic!("{}: no invalid example", s.parameter)
        };
        let by_parameter =
            |v: &str| from_parameters(&pairs(&[(s.parameter, v)]), IsolatorConfig::default());
        let by_variable = |v: &str| {
            from_env(
                |k| (k == var).then(|| v.to_owned()),
                IsolatorConfig::default(),
            )
        };
        let (a, b) = (by_parameter(good).unwrap().0, by_variable(good).unwrap().0);
        assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "{}={good:?}",
            s.parameter
        );
        assert_ne!(
            format!("{a:?}"),
            format!("{:?}", IsolatorConfig::default()),
            "{}={good:?} changes nothing",
            s.parameter
        );
        let (a, b) = (
            by_parameter(bad).unwrap_err(),
            by_variable(bad).unwrap_err(),
        );
        assert_eq!(
            a.to_string().replacen(s.parameter, var, 1),
            b.to_string(),
            "{}={bad:?}",
            s.parameter
        );
        // dvdcli's client settings (mount, unmount, …) refuse it too.
        let client = Settings::from_lookup(|k| (k == var).then(|| bad.to_owned()));
        assert_eq!(client.unwrap_err(), b);
    }
}

#[test]
fn the_values_the_two_old_parsers_disagreed_on_are_refused_by_both_front_ends() {
    for (var, value) in [
        ("DVDI_PLUGIN_DIRS", "plugins"),
        ("DVDI_MAX_REPLY_BYTES", "100"),
    ] {
        let lookup = |k: &str| (k == var).then(|| value.to_owned());
        assert!(Settings::from_lookup(lookup).is_err(), "{var}");
        assert!(IsolatorConfig::from_env(lookup).is_err(), "{var}");
    }
}

#[test]
fn log_level_drops_records_below_it() {
    use crate::lifecycle::Logger;
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        Logger::new(move |level, _| seen.lock().unwrap().push(level))
    };
    for (word, kept) in [("debug", 4), ("info", 3), ("WARNING", 2), ("error", 1)] {
        seen.lock().unwrap().clear();
        let (c, _) =
            from_parameters(&pairs(&[("log_level", word)]), IsolatorConfig::default()).unwrap();
        let log = IsolatorConfig {
            log: sink.clone(),
            ..c
        }
        .logger();
        for level in [
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warning,
            LogLevel::Error,
        ] {
            log.log(level, "x");
        }
        assert_eq!(seen.lock().unwrap().len(), kept, "{word}");
    }
    assert_eq!(IsolatorConfig::default().log_level, LogLevel::Info);
}

#[test]
fn a_debug_isolator_says_its_settings_and_an_info_one_does_not() {
    use crate::lifecycle::Logger;
    use std::sync::{Arc, Mutex};
    for (word, expect) in [("debug", true), ("info", false)] {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = {
            let seen = seen.clone();
            Logger::new(move |level, m: &str| seen.lock().unwrap().push((level, m.to_owned())))
        };
        let checkpoint = dir.path().join("checkpoint");
        let (c, _) = from_parameters(
            &pairs(&[
                ("log_level", word),
                ("checkpoint_dir", checkpoint.to_str().unwrap()),
            ]),
            IsolatorConfig {
                log,
                ..IsolatorConfig::default()
            },
        )
        .unwrap();
        drop(Isolator::from_config(c).unwrap());
        let seen = seen.lock().unwrap();
        let said = seen
            .iter()
            .any(|(l, m)| *l == LogLevel::Debug && m.contains("isolator settings"));
        assert_eq!(said, expect, "{word}: {seen:?}");
    }
}
