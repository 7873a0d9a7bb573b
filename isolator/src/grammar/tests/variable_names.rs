//! The grammar's rules: variable names.

use super::*;

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
