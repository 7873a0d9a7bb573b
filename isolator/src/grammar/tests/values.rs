//! The grammar's rules: values.

use super::*;

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
