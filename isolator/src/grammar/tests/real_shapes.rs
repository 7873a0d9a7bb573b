//! The grammar's rules: real shapes.

use super::*;

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
