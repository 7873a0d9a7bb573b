//! The grammar's rules: slots without a name, `DVDCLI`.

use super::*;

#[test]
fn a_slot_without_a_name_is_skipped_with_a_warning() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "a"),
        ("DVDI_VOLUME_OPTS4", "size=5"),
        ("DVDI_VOLUME_READONLY4", "not even a bool"),
        ("DVDI_VOLUME_CONTAINERPATH4", "/"),
    ]);
    assert_eq!(parsed.volumes.len(), 1);
    assert_eq!(parsed.volumes[0].origin.slot().unwrap(), 0);
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
