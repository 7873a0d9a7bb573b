//! The grammar's rules: one volume.

use super::*;

#[test]
fn a_name_alone_gets_every_default() {
    let parsed = ok(&[("DVDI_VOLUME_NAME", "foo")]);
    assert_eq!(
        parsed.volumes,
        vec![VolumeRequest {
            origin: Origin::Env { slot: 0 },
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
            origin: Origin::Env { slot: 3 },
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
