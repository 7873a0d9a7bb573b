//! The grammar's rules: identity and merging.

use super::*;

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
    assert_eq!(parsed.volumes[0].origin.slot().unwrap(), 0);
    one_warning_containing(
        &parsed,
        &["DVDI_VOLUME_NAME=\"data\"", "DVDI_VOLUME_NAME3", "once"],
    );
}

#[test]
fn same_volume_without_paths_is_one_request() {
    let parsed = ok(&[("DVDI_VOLUME_NAME4", "x"), ("DVDI_VOLUME_NAME2", "x")]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].origin.slot().unwrap(), 2);
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
    assert_eq!(parsed.volumes[0].origin.slot().unwrap(), 0);
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
