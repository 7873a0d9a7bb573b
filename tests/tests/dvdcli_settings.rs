//! `dvdcli mount` and `dvdcli exec` hold to one settings table (`dvdi::SETTINGS`): for every
//! setting, through the real binary, a valid value lets both run and an invalid one stops both
//! with the same message naming the variable.

use dvdi::settings::Kind;
use dvdi::SETTINGS;
use dvdi_testkit::env::require_root;

mod common;
use common::{stderr, Env};

/// The valid example of a setting, made safe to use for real: paths go under the test's world.
fn valid_value(env: &Env, parameter: &str, example: &str, kind: Kind) -> String {
    let here = |name: &str| env.dir.path().join(name).to_string_lossy().into_owned();
    match (parameter, kind) {
        ("plugin_dirs", _) => format!("{}::{}", here("plugins"), here("plugins2")),
        (_, Kind::Path) => here(parameter),
        _ => example.to_owned(),
    }
}

#[test]
fn mount_and_exec_accept_and_refuse_the_same_settings() {
    if !require_root("mount_and_exec_accept_and_refuse_the_same_settings") {
        return;
    }
    let mut checked = 0;
    for (i, s) in SETTINGS.iter().enumerate() {
        let Some(var) = s.variable else { continue };
        let (example, Some(bad)) = s.examples else {
            panic!("{}: the table gives no invalid example", s.parameter)
        };
        let env = Env::new();
        let good = valid_value(&env, s.parameter, example, s.kind);
        let volume = format!("settings{i}");
        let mount = [
            "mount",
            "--volumedriver=local",
            &*format!("--volumename={volume}"),
        ];
        let unmount = [
            "unmount",
            "--volumedriver=local",
            &*format!("--volumename={volume}"),
        ];
        let exec = ["exec", "--", "true"];

        let vars = [(var, good.as_str())];
        let m = env.run(&mount, &vars);
        assert!(
            m.status.success(),
            "mount with {var}={good:?}: {}",
            stderr(&m)
        );
        let u = env.run(&unmount, &vars);
        assert!(
            u.status.success(),
            "unmount with {var}={good:?}: {}",
            stderr(&u)
        );
        let e = env.run(&exec, &vars);
        assert!(
            e.status.success(),
            "exec with {var}={good:?}: {}",
            stderr(&e)
        );

        let vars = [(var, bad)];
        let (m, e) = (env.run(&mount, &vars), env.run(&exec, &vars));
        assert_eq!(
            m.status.code(),
            Some(1),
            "mount with {var}={bad:?}: {}",
            stderr(&m)
        );
        assert_eq!(
            e.status.code(),
            Some(1),
            "exec with {var}={bad:?}: {}",
            stderr(&e)
        );
        assert!(m.stdout.is_empty() && e.stdout.is_empty());
        let want = format!("dvdcli: bad configuration in the environment: invalid {var}=");
        assert!(stderr(&m).starts_with(&want), "mount: {}", stderr(&m));
        assert_eq!(stderr(&m), stderr(&e), "{var}={bad:?}");
        assert!(
            env.mounts().is_empty(),
            "{var}: left mounted {:?}",
            env.mounts()
        );
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} settings walked");
}
