//! `dvdcli exec` with real mounts (root): the volumes appear at their container paths in a
//! private mount namespace, data outlives the run, the exit status passes through, volumes
//! shared by two execs stay mounted until both end, and a SIGKILLed exec's volumes are released
//! by the next dvdcli that looks.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dvdi_testkit::env::require_root;

mod common;
use common::{stderr, wait_for, Env, DATA};

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < until, "dvdcli exec did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_twice_data_persists_and_nothing_stays_mounted() {
    if !require_root("exec_twice_data_persists_and_nothing_stays_mounted") {
        return;
    }
    let env = Env::new();
    let out = env.exec(&DATA, "echo 'written by run 1' > data/hello.txt && grep -c ' - ext4 ' /proc/self/mountinfo >/dev/null");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
    assert!(
        !env.sandbox().join("data/hello.txt").exists(),
        "the write must land on the volume"
    );

    let out = env.exec(&DATA, "cat data/hello.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "written by run 1\n");
    assert!(env.mounts().is_empty());
}

#[test]
fn exit_status_passes_through_and_a_killed_command_is_cleaned_up() {
    if !require_root("exit_status_passes_through_and_a_killed_command_is_cleaned_up") {
        return;
    }
    let env = Env::new();
    assert_eq!(env.exec(&DATA, "exit 3").status.code(), Some(3));
    assert_eq!(env.exec(&DATA, "kill -9 $$").status.code(), Some(128 + 9));
    assert!(env.mounts().is_empty());
}

#[test]
fn sigterm_is_forwarded_and_cleanup_follows() {
    if !require_root("sigterm_is_forwarded_and_cleanup_follows") {
        return;
    }
    let env = Env::new();
    let ready = env.dir.path().join("ready");
    let script = format!("touch {}; exec sleep 60", ready.display());
    let mut child = env
        .dvdcli(&["exec", "--", "sh", "-c", &script], &DATA)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ready);
    assert_eq!(
        env.mounts().len(),
        1,
        "the volume is mounted while the command runs"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(128 + 15));
    assert!(env.mounts().is_empty());
}

#[test]
fn two_execs_share_a_volume_until_both_are_gone() {
    if !require_root("two_execs_share_a_volume_until_both_are_gone") {
        return;
    }
    let env = Env::new();
    let (ready, go) = (env.dir.path().join("ready"), env.dir.path().join("go"));
    let script = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done; cat data/second.txt",
        ready.display(),
        go.display()
    );
    let first = env
        .dvdcli(&["exec", "--", "sh", "-c", &script], &DATA)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ready);
    let out = env.exec(&DATA, "echo from-second > data/second.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.mounts().len(), 1, "still mounted for the first exec");
    std::fs::write(&go, "").unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-second\n");
    assert!(env.mounts().is_empty());
}

#[test]
fn a_sigkilled_exec_is_released_by_the_next_dvdcli() {
    if !require_root("a_sigkilled_exec_is_released_by_the_next_dvdcli") {
        return;
    }
    let env = Env::new();
    let ready = env.dir.path().join("ready");
    // The shell writes its pid (kept by `exec sleep`) before it signals readiness.
    let script = format!(
        "echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 60",
        ready.display()
    );
    let mut child = env
        .dvdcli(&["exec", "--", "sh", "-c", &script], &DATA)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ready);
    child.kill().unwrap(); // SIGKILL: no cleanup of its own
    child.wait().unwrap();
    assert_eq!(env.mounts().len(), 1, "nobody has released it yet");
    // The command died with it (PR_SET_PDEATHSIG): it must not run on without its volumes.
    let pid = std::fs::read_to_string(&ready).unwrap().trim().to_owned();
    let until = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            break; // a zombie waiting for its reaper is dead
        }
        assert!(
            Instant::now() < until,
            "the command {pid} outlived its dvdcli exec"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.dvdcli(&["inspect"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("is gone"), "{}", stderr(&out));
    assert!(
        env.mounts().is_empty(),
        "the dead exec's volume is still mounted"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains("dvdcli-exec-"), "{table}");
}

#[test]
fn inspect_shows_holders_as_a_table_and_as_json() {
    if !require_root("inspect_shows_holders_as_a_table_and_as_json") {
        return;
    }
    let env = Env::new();
    let ready = env.dir.path().join("ready");
    let go = env.dir.path().join("go");
    let script = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done",
        ready.display(),
        go.display()
    );
    let mut child = env
        .dvdcli(&["exec", "--", "sh", "-c", &script], &DATA)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ready);
    let out = env.dvdcli(&["inspect"], &[]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains(&format!("dvdcli-exec-{}-", child.id())),
        "{table}"
    );
    assert!(
        table.contains("local/es-data") && table.contains("mounted"),
        "{table}"
    );
    let out = env.dvdcli(&["inspect", "--json"], &[]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["volumes"][0]["name"], "es-data");
    assert_eq!(json["containers"][0]["holder"]["pid"], child.id());
    std::fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut child).success());
}

#[test]
fn without_dvdi_variables_the_command_just_runs() {
    let env = Env::new();
    let out = env.exec(&[], "echo plain");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plain\n");
}

#[test]
fn bad_dvdi_variables_fail_before_running_anything() {
    let env = Env::new();
    let marker = env.dir.path().join("ran");
    let out = env.exec(
        &[("DVDI_VOLUME_NAME", "v"), ("DVDI_VOLUME_BOGUS", "1")],
        &format!("touch {}", marker.display()),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("DVDI_VOLUME_BOGUS"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists());
}

/// Container records in the checkpoint (none may be left by a refused exec).
fn container_records(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.dir.path().join("ckpt/containers"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                // Not the temp files the ledger keeps for reuse.
                .filter(|n| !n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_driver_outside_dvdi_allowed_drivers_is_refused_before_anything_happens() {
    let env = Env::new();
    let marker = env.dir.path().join("ran");
    let out = env.exec(
        &[
            ("DVDI_ALLOWED_DRIVERS", "local,rexray"),
            ("DVDI_VOLUME_NAME", "v"),
            ("DVDI_VOLUME_DRIVER", "evilplugin"),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
        ],
        &format!("touch {}", marker.display()),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    for needle in ["\"v\"", "evilplugin", "allowed: local, rexray"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(!marker.exists());
    assert!(container_records(&env).is_empty());
    assert!(!env.sandbox().join("data").exists());
    assert!(env.mounts().is_empty());
}

#[test]
fn local_device_options_need_dvdi_local_device_options() {
    let env = Env::new();
    let marker = env.dir.path().join("ran");
    let host_dir = env.dir.path().join("host-secret");
    std::fs::create_dir(&host_dir).unwrap();
    let opts = format!("type=none,o=bind,device={}", host_dir.display());
    let vars = [
        ("DVDI_VOLUME_NAME", "etc"),
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_OPTS", opts.as_str()),
        ("DVDI_VOLUME_CONTAINERPATH", "data"),
    ];
    let out = env.exec(&vars, &format!("touch {}", marker.display()));
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    for needle in ["DVDI_VOLUME_OPTS", "\"etc\"", "DVDI_LOCAL_DEVICE_OPTIONS"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(!marker.exists());
    assert!(container_records(&env).is_empty());
    assert!(
        !env.dir.path().join("volumes/etc").exists(),
        "nothing created"
    );

    if !require_root("local_device_options_need_dvdi_local_device_options") {
        return;
    }
    // The operator allows them: the bind is made, and released after the run.
    std::fs::write(host_dir.join("f"), "host file\n").unwrap();
    let mut allowed = vars.to_vec();
    allowed.push(("DVDI_LOCAL_DEVICE_OPTIONS", "true"));
    let out = env.exec(&allowed, "cat data/f");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host file\n");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

#[test]
fn a_relative_mount_point_from_a_plugin_is_refused_not_resolved_in_the_sandbox() {
    // Issue 10, finding 5: a plugin's relative Mountpoint ("foo") was bound from wherever it
    // resolved — inside the task's sandbox, where a symlink the task planted decides what gets
    // bound — and a missing one ended as `cannot run "sh": Invalid argument (os error 22)`.
    if !require_root("a_relative_mount_point_from_a_plugin_is_refused_not_resolved_in_the_sandbox")
    {
        return;
    }
    use dvdi_testkit::plugin::{Fault, TestPlugin};
    let env = Env::new();
    std::fs::create_dir(env.dir.path().join("plugins")).unwrap();
    let plugin = TestPlugin::start(
        &env.dir.path().join("plugins/test.sock"),
        &env.dir.path().join("mnt"),
    )
    .unwrap();
    let secret = env.dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::os::unix::fs::symlink(&secret, env.sandbox().join("foo")).unwrap();
    let marker = env.dir.path().join("ran");
    let vars = [
        ("DVDI_VOLUME_NAME", "v"),
        ("DVDI_VOLUME_DRIVER", "test"),
        ("DVDI_VOLUME_CONTAINERPATH", "data"),
    ];
    for mountpoint in ["foo", "/nonexistent/mount/point"] {
        plugin.set_fault(
            "VolumeDriver.Mount",
            Fault::Mountpoint(mountpoint.into()),
            None,
        );
        let out = env.exec(&vars, &format!("touch {}", marker.display()));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "plugin \"test\": VolumeDriver.Mount of volume \"v\": mount point {mountpoint:?}"
            )),
            "{err}"
        );
        assert!(!err.contains("cannot run"), "{err}");
        assert!(!marker.exists(), "the command ran");
        assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
        assert!(plugin.mount_ids("v").is_empty(), "the Mount was not undone");
        assert!(
            container_records(&env).is_empty(),
            "{:?}",
            container_records(&env)
        );
    }
    // Each refused Mount was undone once, by the plugin client; nothing is left to retry.
    assert_eq!(plugin.count("VolumeDriver.Unmount"), 2);
    let inspect = || {
        let out = env.dvdcli(&["inspect", "--json"], &[]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let volumes = inspect()["volumes"]
        .as_array()
        .cloned()
        .expect("a volume list");
    for v in &volumes {
        assert_eq!(v["failed_unmounts"], serde_json::json!([]), "{v}");
    }

    // When the undo fails too, the Mount is not forgotten: the isolator tries Unmount again
    // and remembers it for retry, as for a Mount that got no answer.
    plugin.set_fault(
        "VolumeDriver.Unmount",
        Fault::ErrorIn200("device busy".into()),
        Some(2),
    );
    let out = env.exec(&vars, &format!("touch {}", marker.display()));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("undoing the mount with VolumeDriver.Unmount also failed"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
    assert_eq!(plugin.mount_ids("v").len(), 1);
    let volumes = inspect()["volumes"]
        .as_array()
        .cloned()
        .expect("a volume list");
    let failed: usize = volumes
        .iter()
        .map(|v| v["failed_unmounts"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(failed, 1, "{volumes:?}");
    // The next exec retries it, and then mounts normally.
    plugin.clear_faults();
    let out = env.exec(&vars, "true");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        plugin.mount_ids("v").is_empty(),
        "{:?}",
        plugin.mount_ids("v")
    );
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
}
