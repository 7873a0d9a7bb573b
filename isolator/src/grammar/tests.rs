//! Every rule of the grammar, one test (or table) each.

use super::*;

fn run(pairs: &[(&str, &str)]) -> Result<Parsed, GrammarError> {
    parse(pairs.iter().copied(), &GrammarConfig::default())
}

fn ok(pairs: &[(&str, &str)]) -> Parsed {
    run(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn err(pairs: &[(&str, &str)]) -> GrammarError {
    match run(pairs) {
        Ok(parsed) => panic!("{pairs:?} was accepted: {parsed:?}"),
        Err(e) => e,
    }
}

/// The error's message names every one of `needles` (variables, values).
fn assert_names(e: &GrammarError, needles: &[&str]) {
    let text = e.to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

fn opts(pairs: &[(&str, &str)]) -> VolumeOpts {
    let mut o = VolumeOpts::new();
    for (k, v) in pairs {
        o.insert(*k, *v);
    }
    o
}

fn path(p: &str) -> Option<ContainerPath> {
    Some(ContainerPath::new(p).unwrap())
}

fn one_warning_containing(parsed: &Parsed, needles: &[&str]) {
    let hits: Vec<&String> = parsed
        .warnings
        .iter()
        .filter(|w| needles.iter().all(|n| w.contains(n)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "want one warning with {needles:?}, got {:?}",
        parsed.warnings
    );
}

// ---- no DVDI variables ------------------------------------------------------------------------

#[test]
fn no_dvdi_variables_means_no_volumes_and_no_warnings() {
    let env = [
        ("PATH", "/usr/bin"),
        ("DVDI_VOLUME", "x"),
        ("DVDI_VOLUMES", "x"),
        ("dvdi_volume_name", "x"),
        ("XDVDI_VOLUME_NAME", "x"),
        ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
    ];
    let parsed = ok(&env);
    assert_eq!(parsed, Parsed::default());
    assert!(parsed.is_empty());
    assert!(!has_dvdi_variables(env.iter().copied()));
    assert_eq!(ok(&[]), Parsed::default());
    assert!(!has_dvdi_variables(Vec::<(String, String)>::new()));
}

#[test]
fn has_dvdi_variables_sees_any_prefixed_name() {
    for name in [
        "DVDI_VOLUME_NAME",
        "DVDI_VOLUME_NAME7",
        "DVDI_VOLUME_DVDCLI",
        "DVDI_VOLUME_FOO",
        "DVDI_VOLUME_",
    ] {
        assert!(has_dvdi_variables([("PATH", "/bin"), (name, "")]), "{name}");
    }
}

#[test]
fn default_config_uses_rexray() {
    assert_eq!(GrammarConfig::default().default_driver.as_str(), "rexray");
    assert_eq!(DEFAULT_DRIVER, "rexray");
}

// ---- one volume -------------------------------------------------------------------------------

#[test]
fn a_name_alone_gets_every_default() {
    let parsed = ok(&[("DVDI_VOLUME_NAME", "foo")]);
    assert_eq!(
        parsed.volumes,
        vec![VolumeRequest {
            slot: 0,
            driver: DriverName::new("rexray").unwrap(),
            name: VolumeName::new("foo").unwrap(),
            opts: VolumeOpts::new(),
            container_path: None,
            explicit_create: false,
            readonly: false,
        }]
    );
    assert!(parsed.warnings.is_empty());
    assert!(!parsed.is_empty());
}

#[test]
fn configured_default_driver_and_explicit_driver() {
    let config = GrammarConfig {
        default_driver: DriverName::new("local").unwrap(),
    };
    let parsed = parse(
        [
            ("DVDI_VOLUME_NAME", "a"),
            ("DVDI_VOLUME_NAME1", "b"),
            ("DVDI_VOLUME_DRIVER1", "scaleio.v2"),
        ],
        &config,
    )
    .unwrap();
    assert_eq!(parsed.volumes[0].driver.as_str(), "local");
    assert_eq!(parsed.volumes[1].driver.as_str(), "scaleio.v2");
}

#[test]
fn every_variable_of_a_slot_is_read() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME3", "vol"),
        ("DVDI_VOLUME_DRIVER3", "local"),
        ("DVDI_VOLUME_OPTS3", "size=1G,fstype=xfs"),
        ("DVDI_VOLUME_CONTAINERPATH3", "/var/lib/data/"),
        ("DVDI_VOLUME_EXPLICITCREATE3", "true"),
        ("DVDI_VOLUME_READONLY3", "TRUE"),
    ]);
    assert_eq!(
        parsed.volumes,
        vec![VolumeRequest {
            slot: 3,
            driver: DriverName::new("local").unwrap(),
            name: VolumeName::new("vol").unwrap(),
            opts: opts(&[("size", "1G"), ("fstype", "xfs")]),
            container_path: path("/var/lib/data"),
            explicit_create: true,
            readonly: true,
        }]
    );
    assert!(parsed.warnings.is_empty());
}

// ---- real shapes ------------------------------------------------------------------------------

#[test]
fn marathon_shape() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "foo"),
        ("DVDI_VOLUME_NAME1", "bar"),
        ("DVDI_VOLUME_OPTS1", "size=5,iops=150"),
        ("DVDI_VOLUME_NAME2", "baz"),
        ("DVDI_VOLUME_DRIVER2", "rexray"),
    ]);
    let got: Vec<(u8, &str, &VolumeOpts)> = parsed
        .volumes
        .iter()
        .map(|v| (v.slot, v.name.as_str(), &v.opts))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "foo", &VolumeOpts::new()),
            (1, "bar", &opts(&[("size", "5"), ("iops", "150")])),
            (2, "baz", &VolumeOpts::new()),
        ]
    );
    assert!(parsed.volumes.iter().all(|v| v.driver.as_str() == "rexray"));
    assert!(parsed.warnings.is_empty());
}

#[test]
fn elasticsearch_node_with_two_volumes() {
    let parsed = ok(&[
        ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
        ("DVDI_VOLUME_NAME", "elasticsearch3config"),
        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config"),
        ("DVDI_VOLUME_NAME1", "elasticsearch3data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "data"),
    ]);
    assert_eq!(parsed.volumes.len(), 2);
    let (config, data) = (&parsed.volumes[0], &parsed.volumes[1]);
    assert_eq!(
        (config.slot, config.name.as_str(), config.driver.as_str()),
        (0, "elasticsearch3config", "rexray")
    );
    assert_eq!(config.container_path, path("/tmp/config"));
    assert!(config.container_path.as_ref().unwrap().is_absolute());
    assert_eq!(
        (data.slot, data.name.as_str(), data.driver.as_str()),
        (1, "elasticsearch3data", "rexray")
    );
    assert_eq!(data.container_path, path("data"));
    assert!(!data.container_path.as_ref().unwrap().is_absolute());
    assert!(parsed.warnings.is_empty());
}

#[test]
fn nfs_options_keep_slashes_colons_and_commas() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "share"),
        ("DVDI_VOLUME_DRIVER", "local"),
        (
            "DVDI_VOLUME_OPTS",
            "type=nfs,o=addr=10.0.0.1,rw,device=:/export",
        ),
    ]);
    assert_eq!(
        parsed.volumes[0].opts,
        opts(&[
            ("type", "nfs"),
            ("o", "addr=10.0.0.1,rw"),
            ("device", ":/export")
        ])
    );
}

#[test]
fn empty_opts_is_an_empty_list() {
    let parsed = ok(&[("DVDI_VOLUME_NAME", "a"), ("DVDI_VOLUME_OPTS", "")]);
    assert!(parsed.volumes[0].opts.is_empty());
}

// ---- slots ------------------------------------------------------------------------------------

#[test]
fn no_suffix_and_zero_are_the_same_slot() {
    let parsed = ok(&[("DVDI_VOLUME_NAME0", "a"), ("DVDI_VOLUME_OPTS", "size=1")]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].slot, 0);
    assert_eq!(parsed.volumes[0].opts, opts(&[("size", "1")]));
}

#[test]
fn slot_zero_written_twice_last_wins_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "first"),
        ("DVDI_VOLUME_NAME0", "second"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].name.as_str(), "second");
    one_warning_containing(
        &parsed,
        &[
            "DVDI_VOLUME_NAME=\"first\"",
            "DVDI_VOLUME_NAME0=\"second\"",
            "last one wins",
        ],
    );

    let parsed = ok(&[
        ("DVDI_VOLUME_NAME0", "second"),
        ("DVDI_VOLUME_NAME", "first"),
    ]);
    assert_eq!(parsed.volumes[0].name.as_str(), "first");
    one_warning_containing(&parsed, &["\"first\"", "\"second\""]);
}

#[test]
fn any_variable_set_twice_last_wins_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME2", "v"),
        ("DVDI_VOLUME_DRIVER2", "rexray"),
        ("DVDI_VOLUME_DRIVER2", "local"),
        ("DVDI_VOLUME_CONTAINERPATH2", "/a"),
        ("DVDI_VOLUME_CONTAINERPATH2", "/b"),
    ]);
    let v = &parsed.volumes[0];
    assert_eq!(v.driver.as_str(), "local");
    assert_eq!(v.container_path, path("/b"));
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    one_warning_containing(&parsed, &["DVDI_VOLUME_DRIVER2", "\"rexray\"", "\"local\""]);
    one_warning_containing(&parsed, &["DVDI_VOLUME_CONTAINERPATH2", "\"/a\"", "\"/b\""]);
}

#[test]
fn only_the_winning_value_is_validated() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "bad/name"),
        ("DVDI_VOLUME_NAME", "good"),
        ("DVDI_VOLUME_READONLY", "yes"),
        ("DVDI_VOLUME_READONLY", "true"),
    ]);
    assert_eq!(parsed.volumes[0].name.as_str(), "good");
    assert!(parsed.volumes[0].readonly);
    // ... and an invalid last value is refused even after a valid one.
    let e = err(&[("DVDI_VOLUME_NAME", "good"), ("DVDI_VOLUME_NAME", "-rf")]);
    assert!(matches!(e, GrammarError::InvalidName { .. }), "{e:?}");
}

#[test]
fn volumes_are_ordered_by_slot_not_by_environment_order() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME12", "c"),
        ("DVDI_VOLUME_NAME2", "b"),
        ("DVDI_VOLUME_NAME", "a"),
    ]);
    let slots: Vec<u8> = parsed.volumes.iter().map(|v| v.slot).collect();
    assert_eq!(slots, vec![0, 2, 12]);
}

#[test]
fn a_hundred_volumes_in_slots_0_to_99() {
    let mut env = Vec::new();
    for slot in (0..=99u8).rev() {
        let suffix = if slot == 0 {
            String::new()
        } else {
            slot.to_string()
        };
        env.push((format!("DVDI_VOLUME_NAME{suffix}"), format!("vol{slot}")));
        env.push((
            format!("DVDI_VOLUME_CONTAINERPATH{suffix}"),
            format!("/mnt/v{slot}"),
        ));
    }
    let parsed = parse(env, &GrammarConfig::default()).unwrap();
    assert_eq!(parsed.volumes.len(), 100);
    for (i, v) in parsed.volumes.iter().enumerate() {
        assert_eq!(usize::from(v.slot), i);
        assert_eq!(v.name.as_str(), format!("vol{i}"));
        assert_eq!(v.container_path, path(&format!("/mnt/v{i}")));
    }
    assert!(parsed.warnings.is_empty());
}

#[test]
fn sparse_slots_beyond_nine() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME10", "ten"),
        ("DVDI_VOLUME_NAME99", "last"),
        ("DVDI_VOLUME_OPTS99", "size=9"),
        ("DVDI_VOLUME_NAME5", "five"),
        ("DVDI_VOLUME_READONLY10", "true"),
    ]);
    let got: Vec<(u8, &str, bool)> = parsed
        .volumes
        .iter()
        .map(|v| (v.slot, v.name.as_str(), v.readonly))
        .collect();
    assert_eq!(
        got,
        vec![(5, "five", false), (10, "ten", true), (99, "last", false)]
    );
    assert_eq!(parsed.volumes[2].opts, opts(&[("size", "9")]));
}

// ---- variable names ---------------------------------------------------------------------------

#[test]
fn no_keyword_is_a_prefix_of_another() {
    for a in Kind::ALL {
        for b in Kind::ALL {
            if a != b {
                assert!(!b.keyword().starts_with(a.keyword()), "{a:?} {b:?}");
            }
        }
    }
}

#[test]
fn every_keyword_takes_every_slot_spelling() {
    for kind in Kind::ALL {
        for (suffix, slot) in [
            ("", 0),
            ("0", 0),
            ("1", 1),
            ("9", 9),
            ("10", 10),
            ("99", 99),
        ] {
            let name = format!("DVDI_VOLUME_{}{suffix}", kind.keyword());
            assert_eq!(classify(&name, "v"), Ok(Some((kind, slot))), "{name}");
            if slot == 0 {
                assert_eq!(
                    kind.variable(slot),
                    format!("DVDI_VOLUME_{}", kind.keyword())
                );
            } else {
                assert_eq!(kind.variable(slot), name);
            }
        }
    }
}

#[test]
fn malformed_names_are_errors_naming_the_variable() {
    type IsExpected = fn(&GrammarError) -> bool;
    let cases: &[(&str, IsExpected)] = &[
        ("DVDI_VOLUME_NAMES", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_FOO", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_name", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_Name1", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_NAME_1", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_NAME-1", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_NAME+1", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_NAME\u{0661}", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_READ_ONLY", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_EXPLICIT_CREATE1", |e| {
            matches!(e, GrammarError::UnknownVariable { .. })
        }),
        ("DVDI_VOLUME_NAME1a", |e| {
            matches!(e, GrammarError::BadSuffix { .. })
        }),
        ("DVDI_VOLUME_OPTS2 ", |e| {
            matches!(e, GrammarError::BadSuffix { .. })
        }),
        ("DVDI_VOLUME_DVDCLI1x", |e| {
            matches!(e, GrammarError::BadSuffix { .. })
        }),
        ("DVDI_VOLUME_NAME100", |e| {
            matches!(e, GrammarError::SlotOutOfRange { .. })
        }),
        ("DVDI_VOLUME_DRIVER256", |e| {
            matches!(e, GrammarError::SlotOutOfRange { .. })
        }),
        ("DVDI_VOLUME_NAME0100", |e| {
            matches!(e, GrammarError::SlotOutOfRange { .. })
        }),
        ("DVDI_VOLUME_NAME99999999999999999999999999", |e| {
            matches!(e, GrammarError::SlotOutOfRange { .. })
        }),
        (
            "DVDI_VOLUME_NAME01",
            |e| matches!(e, GrammarError::LeadingZero { suggestion, .. } if suggestion == "DVDI_VOLUME_NAME1"),
        ),
        (
            "DVDI_VOLUME_NAME00",
            |e| matches!(e, GrammarError::LeadingZero { suggestion, .. } if suggestion == "DVDI_VOLUME_NAME0"),
        ),
        (
            "DVDI_VOLUME_READONLY099",
            |e| matches!(e, GrammarError::LeadingZero { suggestion, .. } if suggestion == "DVDI_VOLUME_READONLY99"),
        ),
    ];
    for (name, is_expected) in cases {
        let e = err(&[("DVDI_VOLUME_NAME", "ok"), (name, "the-value")]);
        assert!(is_expected(&e), "{name:?}: {e:?}");
        assert_names(&e, &[name, "\"the-value\""]);
    }
}

#[test]
fn unrelated_malformed_names_are_not_ours() {
    let parsed = ok(&[
        ("DVDI_VOLUMENAME", "x"),
        ("DVDI_volume_NAME", "x"),
        ("DVDI_TIMEOUT", "5"),
        ("DVDI_VOLUME_NAME", "a"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert!(parsed.warnings.is_empty());
}

// ---- slots without a name, DVDCLI ------------------------------------------------------------

#[test]
fn a_slot_without_a_name_is_skipped_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "a"),
        ("DVDI_VOLUME_OPTS4", "size=5"),
        ("DVDI_VOLUME_READONLY4", "not even a bool"),
        ("DVDI_VOLUME_CONTAINERPATH4", "/"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].slot, 0);
    one_warning_containing(
        &parsed,
        &[
            "slot 4",
            "DVDI_VOLUME_NAME4",
            "DVDI_VOLUME_OPTS4",
            "DVDI_VOLUME_READONLY4",
            "DVDI_VOLUME_CONTAINERPATH4",
        ],
    );
    assert_eq!(parsed.warnings.len(), 1);
}

#[test]
fn only_nameless_slots_give_no_volumes_but_warn() {
    let parsed = ok(&[("DVDI_VOLUME_DRIVER", "rexray")]);
    assert!(parsed.is_empty());
    one_warning_containing(&parsed, &["DVDI_VOLUME_NAME", "DVDI_VOLUME_DRIVER"]);
}

#[test]
fn dvdcli_is_ignored_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "a"),
        ("DVDI_VOLUME_DVDCLI", "/opt/evil/dvdcli"),
        ("DVDI_VOLUME_DVDCLI7", "/tmp/x"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    one_warning_containing(
        &parsed,
        &["DVDI_VOLUME_DVDCLI=\"/opt/evil/dvdcli\"", "ignoring"],
    );
    // A slot holding only DVDCLI is not a nameless slot: one warning, not two.
    one_warning_containing(&parsed, &["DVDI_VOLUME_DVDCLI7"]);
}

// ---- values -----------------------------------------------------------------------------------

#[test]
fn bad_names_and_drivers_are_errors_naming_the_variable_and_value() {
    for (var, value) in [
        ("DVDI_VOLUME_NAME", ""),
        ("DVDI_VOLUME_NAME", "a/b"),
        ("DVDI_VOLUME_NAME", ".."),
        ("DVDI_VOLUME_NAME", "-rf"),
        ("DVDI_VOLUME_NAME", "tab\there"),
    ] {
        let e = err(&[(var, value)]);
        assert!(matches!(e, GrammarError::InvalidName { .. }), "{e:?}");
        assert_names(&e, &[var, &format!("{value:?}"), "volume name"]);
    }
    for value in ["", "../etc", "a b", "a/b", "-x"] {
        let e = err(&[("DVDI_VOLUME_NAME5", "ok"), ("DVDI_VOLUME_DRIVER5", value)]);
        assert!(matches!(e, GrammarError::InvalidName { .. }), "{e:?}");
        assert_names(
            &e,
            &["DVDI_VOLUME_DRIVER5", &format!("{value:?}"), "driver name"],
        );
    }
}

#[test]
fn names_and_values_are_not_shell_filtered() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "a:b;$(x)`y`|&"),
        ("DVDI_VOLUME_OPTS", "k=$(rm -rf /);x|y"),
    ]);
    assert_eq!(parsed.volumes[0].name.as_str(), "a:b;$(x)`y`|&");
    assert_eq!(parsed.volumes[0].opts.get("k"), Some("$(rm -rf /);x|y"));
}

#[test]
fn bad_opts_are_errors_naming_the_variable() {
    for value in ["rw", "=x", "rw,a=b"] {
        let e = err(&[("DVDI_VOLUME_NAME2", "a"), ("DVDI_VOLUME_OPTS2", value)]);
        assert!(matches!(e, GrammarError::InvalidOpts { .. }), "{e:?}");
        assert_names(&e, &["DVDI_VOLUME_OPTS2", &format!("{value:?}")]);
    }
}

#[test]
fn container_paths_are_validated_and_normalised() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "a"),
        ("DVDI_VOLUME_CONTAINERPATH", "//tmp//config/"),
        ("DVDI_VOLUME_NAME1", "b"),
        ("DVDI_VOLUME_CONTAINERPATH1", "./data/"),
    ]);
    assert_eq!(parsed.volumes[0].container_path, path("/tmp/config"));
    assert_eq!(
        parsed.volumes[0].container_path.as_ref().unwrap().as_str(),
        "/tmp/config"
    );
    assert_eq!(
        parsed.volumes[1].container_path.as_ref().unwrap().as_str(),
        "data"
    );

    for value in [
        "",
        "/",
        "///",
        ".",
        "..",
        "/tmp/../etc",
        "a/../../b",
        "/a\0b",
        " /a",
    ] {
        let e = err(&[
            ("DVDI_VOLUME_NAME1", "a"),
            ("DVDI_VOLUME_CONTAINERPATH1", value),
        ]);
        assert!(
            matches!(e, GrammarError::InvalidContainerPath { .. }),
            "{e:?}"
        );
        assert_names(&e, &["DVDI_VOLUME_CONTAINERPATH1", &format!("{value:?}")]);
    }
}

#[test]
fn flags_accept_true_false_and_empty_only() {
    for var in ["DVDI_VOLUME_EXPLICITCREATE", "DVDI_VOLUME_READONLY"] {
        for (value, want) in [
            ("true", true),
            ("TRUE", true),
            (" True\n", true),
            ("false", false),
            ("False", false),
            ("", false),
            ("  ", false),
        ] {
            let v = &ok(&[("DVDI_VOLUME_NAME", "a"), (var, value)]).volumes[0];
            let got = if var.ends_with("READONLY") {
                v.readonly
            } else {
                v.explicit_create
            };
            assert_eq!(got, want, "{var}={value:?}");
        }
        for value in ["yes", "1", "0", "on", "no", "t", "truee", "true false"] {
            let e = err(&[("DVDI_VOLUME_NAME", "a"), (var, value)]);
            assert_eq!(
                e,
                GrammarError::InvalidBool {
                    variable: var.into(),
                    value: value.into()
                }
            );
            assert_names(&e, &[var, &format!("{value:?}")]);
        }
    }
}

// ---- identity and merging ---------------------------------------------------------------------

#[test]
fn identity_is_driver_and_name_case_sensitive() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_CONTAINERPATH", "/a"),
        ("DVDI_VOLUME_NAME1", "Data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "/b"),
        ("DVDI_VOLUME_NAME2", "data"),
        ("DVDI_VOLUME_DRIVER2", "local"),
        ("DVDI_VOLUME_CONTAINERPATH2", "/c"),
    ]);
    assert_eq!(parsed.volumes.len(), 3);
    assert!(parsed.warnings.is_empty());
}

#[test]
fn same_volume_same_path_is_one_request_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_CONTAINERPATH", "/data"),
        ("DVDI_VOLUME_NAME3", "data"),
        ("DVDI_VOLUME_DRIVER3", "rexray"),
        ("DVDI_VOLUME_CONTAINERPATH3", "/data/"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].slot, 0);
    one_warning_containing(
        &parsed,
        &["DVDI_VOLUME_NAME=\"data\"", "DVDI_VOLUME_NAME3", "once"],
    );
}

#[test]
fn same_volume_without_paths_is_one_request() {
    let parsed = ok(&[("DVDI_VOLUME_NAME4", "x"), ("DVDI_VOLUME_NAME2", "x")]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].slot, 2);
    assert_eq!(parsed.warnings.len(), 1);
}

#[test]
fn same_volume_at_two_paths_is_an_error_naming_both_slots() {
    let e = err(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_CONTAINERPATH", "/a"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "/b"),
    ]);
    assert!(matches!(e, GrammarError::VolumeAtTwoPaths { .. }), "{e:?}");
    assert_names(
        &e,
        &[
            "slot 0",
            "slot 1",
            "DVDI_VOLUME_CONTAINERPATH=\"/a\"",
            "DVDI_VOLUME_CONTAINERPATH1=\"/b\"",
            "\"data\"",
            "\"rexray\"",
        ],
    );

    let e = err(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "/b"),
    ]);
    assert!(matches!(e, GrammarError::VolumeAtTwoPaths { .. }), "{e:?}");
    assert_names(
        &e,
        &[
            "DVDI_VOLUME_CONTAINERPATH (unset)",
            "DVDI_VOLUME_CONTAINERPATH1=\"/b\"",
        ],
    );
}

#[test]
fn merged_options_one_empty_takes_the_other() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_OPTS1", "size=5"),
        ("DVDI_VOLUME_NAME2", "data"),
        ("DVDI_VOLUME_OPTS2", "size=5"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].slot, 0);
    assert_eq!(parsed.volumes[0].opts, opts(&[("size", "5")]));
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
}

#[test]
fn merged_options_that_differ_are_an_error_naming_both_lists() {
    let e = err(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_OPTS1", "size=5"),
        ("DVDI_VOLUME_NAME2", "data"),
        ("DVDI_VOLUME_OPTS2", "size=6"),
    ]);
    assert!(matches!(e, GrammarError::ConflictingOpts { .. }), "{e:?}");
    // Slot 0 took its options from slot 1, and the message says so.
    assert_names(
        &e,
        &[
            "DVDI_VOLUME_OPTS1=\"size=5\"",
            "DVDI_VOLUME_OPTS2=\"size=6\"",
            "slot 0",
            "slot 2",
        ],
    );
}

#[test]
fn merged_readonly_that_differs_is_an_error() {
    let e = err(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_READONLY", "true"),
        ("DVDI_VOLUME_NAME1", "data"),
    ]);
    assert!(
        matches!(e, GrammarError::ConflictingReadOnly { .. }),
        "{e:?}"
    );
    assert_names(
        &e,
        &[
            "DVDI_VOLUME_READONLY=\"true\"",
            "DVDI_VOLUME_READONLY1 (unset)",
        ],
    );

    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "data"),
        ("DVDI_VOLUME_READONLY", "true"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_READONLY1", "TRUE"),
    ]);
    assert!(parsed.volumes[0].readonly);
}

#[test]
fn merged_explicit_create_wins_with_a_warning() {
    for (a, b) in [("true", "false"), ("", "true")] {
        let parsed = ok(&[
            ("DVDI_VOLUME_NAME", "data"),
            ("DVDI_VOLUME_EXPLICITCREATE", a),
            ("DVDI_VOLUME_NAME1", "data"),
            ("DVDI_VOLUME_EXPLICITCREATE1", b),
        ]);
        assert_eq!(parsed.volumes.len(), 1);
        assert!(parsed.volumes[0].explicit_create, "{a:?} {b:?}");
        one_warning_containing(
            &parsed,
            &[
                "DVDI_VOLUME_EXPLICITCREATE=",
                "DVDI_VOLUME_EXPLICITCREATE1=",
                "must already exist",
            ],
        );
    }
}

#[test]
fn two_volumes_at_one_container_path_are_an_error_naming_both() {
    let e = err(&[
        ("DVDI_VOLUME_NAME", "a"),
        ("DVDI_VOLUME_CONTAINERPATH", "/data"),
        ("DVDI_VOLUME_NAME7", "b"),
        ("DVDI_VOLUME_DRIVER7", "local"),
        ("DVDI_VOLUME_CONTAINERPATH7", "//data/"),
    ]);
    match &e {
        GrammarError::SharedContainerPath {
            path,
            first,
            second,
        } => {
            assert_eq!(path.as_str(), "/data");
            assert_eq!((first.slot, second.slot), (0, 7));
        }
        other => panic!("{other:?}"),
    }
    assert_names(
        &e,
        &[
            "/data",
            "slot 0",
            "slot 7",
            "DVDI_VOLUME_CONTAINERPATH=\"/data\"",
            "DVDI_VOLUME_CONTAINERPATH7=\"//data/\"",
            "\"a\"",
            "\"b\"",
            "\"local\"",
        ],
    );
    // Relative paths too; a relative and an absolute path are different places.
    assert!(matches!(
        err(&[
            ("DVDI_VOLUME_NAME", "a"),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
            ("DVDI_VOLUME_NAME1", "b"),
            ("DVDI_VOLUME_CONTAINERPATH1", "./data"),
        ]),
        GrammarError::SharedContainerPath { .. }
    ));
    assert_eq!(
        ok(&[
            ("DVDI_VOLUME_NAME", "a"),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
            ("DVDI_VOLUME_NAME1", "b"),
            ("DVDI_VOLUME_CONTAINERPATH1", "/data"),
        ])
        .volumes
        .len(),
        2
    );
}

#[test]
fn two_volumes_without_container_paths_do_not_collide() {
    let parsed = ok(&[("DVDI_VOLUME_NAME", "a"), ("DVDI_VOLUME_NAME1", "b")]);
    assert_eq!(parsed.volumes.len(), 2);
}

// ---- robustness -------------------------------------------------------------------------------

/// xorshift64*: a tiny deterministic PRNG, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn random_name(rng: &mut Rng) -> String {
    const PREFIXES: &[&str] = &["DVDI_VOLUME", "dvdi_volume_", "PATH", "", "DVDI_VOLUME_"];
    const KEYWORDS: &[&str] = &[
        "NAME",
        "NAME",
        "NAME",
        "DRIVER",
        "OPTS",
        "CONTAINERPATH",
        "EXPLICITCREATE",
        "READONLY",
        "DVDCLI",
        "NAM",
        "FOO",
        "",
        "name",
    ];
    const SLOTS: &[&str] = &["", "0", "1", "2", "3"];
    const SUFFIX: &[&str] = &["", "0", "1", "9", "7", "a", "_", " ", "\u{0661}", "é"];
    // Mostly well-formed names, so that many environments get as far as the slot rules.
    if rng.below(4) != 0 {
        let keyword = rng.pick(&KEYWORDS[..9]);
        return format!("DVDI_VOLUME_{keyword}{}", rng.pick(SLOTS));
    }
    let mut name = format!("{}{}", rng.pick(PREFIXES), rng.pick(KEYWORDS));
    for _ in 0..rng.below(4) {
        name.push_str(rng.pick(SUFFIX));
    }
    name
}

fn random_value(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "data",
        "/",
        "//",
        ".",
        "..",
        "=",
        ",",
        ":",
        " ",
        "\0",
        "\n",
        "-",
        "true",
        "TRUE",
        "false",
        "size=5",
        "o=addr=10.0.0.1",
        "rw",
        "local",
        "rexray",
        "é",
        "\u{7f}",
        "/tmp",
    ];
    const PLAIN: &[&str] = &[
        "a", "b", "data", "rexray", "local", "/a", "b/c", "true", "false", "size=5",
    ];
    if rng.below(2) == 0 {
        return rng.pick(PLAIN).to_owned();
    }
    let mut value = String::new();
    for _ in 0..rng.below(5) {
        value.push_str(rng.pick(PIECES));
    }
    value
}

#[test]
fn random_environments_never_panic_and_keep_the_invariants() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut refused, mut volumes) = (0, 0, 0);
    for _ in 0..20_000 {
        let env: Vec<(String, String)> = (0..rng.below(8))
            .map(|_| (random_name(&mut rng), random_value(&mut rng)))
            .collect();
        let result = parse(env.iter().map(|(n, v)| (n, v)), &GrammarConfig::default());
        let ours = has_dvdi_variables(env.iter().map(|(n, v)| (n, v)));
        match result {
            Ok(parsed) => {
                accepted += 1;
                volumes += parsed.volumes.len();
                if !ours {
                    assert_eq!(parsed, Parsed::default(), "{env:?}");
                }
                let v = &parsed.volumes;
                assert!(v.windows(2).all(|w| w[0].slot < w[1].slot), "{env:?}");
                assert!(v.iter().all(|r| r.slot <= MAX_SLOT), "{env:?}");
                for (i, a) in v.iter().enumerate() {
                    for b in &v[i + 1..] {
                        assert!((&a.driver, &a.name) != (&b.driver, &b.name), "{env:?}");
                        if a.container_path.is_some() {
                            assert_ne!(a.container_path, b.container_path, "{env:?}");
                        }
                    }
                    if let Some(p) = &a.container_path {
                        // Normalisation is idempotent.
                        assert_eq!(&ContainerPath::new(p.as_str()).unwrap(), p);
                    }
                }
            }
            Err(e) => {
                refused += 1;
                assert!(ours, "{env:?}: {e}");
                assert!(e.to_string().contains("DVDI_VOLUME_"), "{e}");
            }
        }
    }
    // The generator reaches both outcomes often enough to mean something.
    eprintln!("accepted {accepted}, refused {refused}, volumes {volumes}");
    assert!(
        accepted > 2_000 && refused > 2_000 && volumes > 1_000,
        "{accepted} {refused} {volumes}"
    );
}
