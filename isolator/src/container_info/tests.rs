//! The `ContainerInfo` grammar's rules: one test each.

use super::*;
use crate::grammar::{self, GrammarConfig};

fn dv(index: usize, driver: &str, name: &str, path: &str, mode: &str) -> DockerVolume {
    DockerVolume::test(index, driver, name, path, mode)
}

fn env(pairs: &[(&str, &str)]) -> Vec<VolumeRequest> {
    grammar::parse(pairs.iter().copied(), &GrammarConfig::default())
        .unwrap()
        .volumes
}

#[test]
fn an_entry_becomes_a_request_with_its_origin_options_and_mode() {
    let mut v = dv(1, "capfast", "dv1", "data/", "RO");
    v.options = vec![
        ("size".into(), "5".into()),
        ("o".into(), "addr=10.0.0.1,rw".into()),
        ("size".into(), "6".into()),
    ];
    let r = parse_one(&v).unwrap();
    assert_eq!(r.origin, Origin::ContainerInfo { index: 1 });
    assert_eq!((r.driver.as_str(), r.name.as_str()), ("capfast", "dv1"));
    assert_eq!(r.container_path.unwrap().as_str(), "data");
    assert!(r.readonly);
    assert!(!r.explicit_create);
    // Values are taken whole (no `,` splitting); a later key wins, as in Mesos' map.
    assert_eq!(r.opts.get("o"), Some("addr=10.0.0.1,rw"));
    assert_eq!(r.opts.get("size"), Some("6"));
    assert!(!parse_one(&dv(0, "d", "n", "/x", "RW")).unwrap().readonly);
}

#[test]
fn bad_entries_are_refused_naming_the_entry_and_the_volume() {
    let cases: Vec<(DockerVolume, &[&str])> = vec![
        (
            DockerVolume {
                driver: None,
                ..dv(2, "d", "dv", "p", "RW")
            },
            &["container_info.volumes[2]", "\"dv\"", "driver is not set"],
        ),
        (
            dv(3, "capfast", "", "p", "RW"),
            &["container_info.volumes[3]", "invalid volume name \"\""],
        ),
        (
            dv(0, "../x", "dv", "p", "RW"),
            &["container_info.volumes[0]", "invalid driver name \"../x\""],
        ),
        (
            dv(1, "capfast", "dv", "p", "rw"),
            &[
                "container_info.volumes[1]",
                "volume \"dv\" of driver \"capfast\"",
                "mode \"rw\" is neither RW nor RO",
            ],
        ),
        (
            DockerVolume {
                mode: None,
                ..dv(1, "capfast", "dv", "p", "RW")
            },
            &["container_info.volumes[1]", "mode (unset)"],
        ),
        (
            dv(4, "capfast", "dv", "a/../b", "RW"),
            &["container_info.volumes[4]", "\"dv\"", "a/../b"],
        ),
        (
            dv(4, "capfast", "dv", "", "RW"),
            &["container_info.volumes[4]", "invalid container path \"\""],
        ),
        (
            DockerVolume {
                options: vec![(String::new(), "v".into())],
                ..dv(5, "capfast", "dv", "p", "RW")
            },
            &["container_info.volumes[5]", "driver option 0", "empty key"],
        ),
        (
            // Input is never printed raw.
            dv(6, "capfast", "dv", "p", "R\u{1b}[2JO"),
            &["container_info.volumes[6]", "\\u{1b}"],
        ),
    ];
    for (volume, words) in cases {
        let err = parse_one(&volume).unwrap_err().to_string();
        for w in words {
            assert!(err.contains(w), "{err:?} lacks {w:?}");
        }
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
}

#[test]
fn env_and_container_info_naming_one_volume_at_one_place_are_one_request() {
    let mut requests = env(&[
        ("DVDI_VOLUME_NAME", "shared"),
        ("DVDI_VOLUME_DRIVER", "capfast"),
        ("DVDI_VOLUME_CONTAINERPATH", "data"),
    ]);
    let mut same = dv(0, "capfast", "shared", "data", "RW");
    same.options = vec![("size".into(), "5".into())];
    let warnings = parse_into(&mut requests, &[same]).unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].origin, Origin::Env { slot: 0 });
    // The environment gave no options: the entry's are used to create it.
    assert_eq!(requests[0].opts.get("size"), Some("5"));
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("DVDI_VOLUME_NAME and container_info.volumes[0]"),
        "{warnings:?}"
    );
}

#[test]
fn one_volume_asked_for_two_ways_is_an_error_naming_both_origins() {
    let base = || {
        env(&[
            ("DVDI_VOLUME_NAME3", "shared"),
            ("DVDI_VOLUME_DRIVER3", "capfast"),
            ("DVDI_VOLUME_CONTAINERPATH3", "data"),
            ("DVDI_VOLUME_OPTS3", "size=1"),
        ])
    };
    let cases: Vec<(DockerVolume, &str)> = vec![
        (
            dv(2, "capfast", "shared", "other", "RW"),
            "two container paths",
        ),
        (dv(2, "capfast", "shared", "data", "RO"), "read-write by"),
        (
            DockerVolume {
                options: vec![("size".into(), "2".into())],
                ..dv(2, "capfast", "shared", "data", "RW")
            },
            "different options",
        ),
        (
            dv(2, "capfast", "other", "data", "RW"),
            "two volumes at container path",
        ),
    ];
    for (entry, what) in cases {
        let err = parse_into(&mut base(), &[entry]).unwrap_err().to_string();
        for w in [what, "DVDI_VOLUME_NAME3", "container_info.volumes[2]"] {
            assert!(err.contains(w), "{err:?} lacks {w:?}");
        }
    }
    // Two entries for one volume follow the same rule.
    let err = parse_into(
        &mut Vec::new(),
        &[
            dv(0, "capfast", "v", "a", "RW"),
            dv(1, "capfast", "v", "b", "RW"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("container_info.volumes[0]"), "{err}");
    assert!(err.contains("container_info.volumes[1]"), "{err}");
}

#[test]
fn every_entry_is_checked_before_any_conflict_is_reported() {
    let err = parse_into(
        &mut env(&[
            ("DVDI_VOLUME_NAME", "v"),
            ("DVDI_VOLUME_CONTAINERPATH", "a"),
        ]),
        &[
            dv(0, "rexray", "v", "b", "RW"),
            dv(1, "rexray", "w", "c", "bad"),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(*err, DockerVolumeError::InvalidMode { .. }),
        "{err}"
    );
}
