//! The grammar's rules: slots.

use super::*;

#[test]
fn no_suffix_and_zero_are_the_same_slot() {
    let parsed = ok(&[("DVDI_VOLUME_NAME0", "a"), ("DVDI_VOLUME_OPTS", "size=1")]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].origin.slot().unwrap(), 0);
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
    let slots: Vec<u8> = parsed
        .volumes
        .iter()
        .map(|v| v.origin.slot().unwrap())
        .collect();
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
        assert_eq!(usize::from(v.origin.slot().unwrap()), i);
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
        .map(|v| (v.origin.slot().unwrap(), v.name.as_str(), v.readonly))
        .collect();
    assert_eq!(
        got,
        vec![(5, "five", false), (10, "ten", true), (99, "last", false)]
    );
    assert_eq!(parsed.volumes[2].opts, opts(&[("size", "9")]));
}
