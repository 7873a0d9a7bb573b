//! The grammar's rules: no `DVDI_` variables.

use super::*;

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
