//! Black-box tests of the built `dvdcli` binary against the test plugin over a real Unix socket:
//! the exact argv Mesos' built-in isolator and DVDI send, byte-exact stdout, exit codes, and one
//! test named after each deliberate fix over Go dvdcli (SPEC §3).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use dvdi_testkit::env::{command, workspace_bin};
use dvdi_testkit::plugin::{Fault, PluginOptions, TestPlugin};
use serde_json::json;

/// A plugin named `test` in a temp plugin dir, and a way to run dvdcli against it.
struct Env {
    dir: tempfile::TempDir,
    plugin: TestPlugin,
}

impl Env {
    fn new() -> Env {
        Env::with(PluginOptions::default())
    }

    fn with(options: PluginOptions) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let plugin = TestPlugin::start_with(
            &dir.path().join("plugins/test.sock"),
            &dir.path().join("mnt"),
            options,
        )
        .unwrap();
        Env { dir, plugin }
    }

    fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    fn dvdcli(&self, args: &[&str]) -> Output {
        self.dvdcli_env(args, &[])
    }

    fn dvdcli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = command(&workspace_bin("dvdcli"));
        cmd.args(args)
            .env("DVDI_PLUGIN_DIRS", self.plugin_dir())
            .env("DVDI_LOCAL_ROOT", self.dir.path().join("local"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn mountpoint(&self, volume: &str) -> String {
        format!("{}\n", self.dir.path().join("mnt").join(volume).display())
    }

    /// The endpoints called, in order.
    fn endpoints(&self) -> Vec<String> {
        self.plugin
            .calls()
            .into_iter()
            .map(|c| c.endpoint)
            .collect()
    }

    fn bodies(&self, endpoint: &str) -> Vec<serde_json::Value> {
        self.plugin
            .calls()
            .into_iter()
            .filter(|c| c.endpoint == endpoint)
            .map(|c| c.body)
            .collect()
    }
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("dvdcli was killed by a signal")
}

#[test]
fn mesos_builtin_isolator_argv_mount_then_unmount() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=es-data",
        "--volumeopts=size=5",
        "--volumeopts=iops=150",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("es-data"));
    assert_eq!(
        env.endpoints(),
        [
            "Plugin.Activate",
            "VolumeDriver.Get",
            "VolumeDriver.Create",
            "VolumeDriver.Mount"
        ]
    );
    assert_eq!(
        env.bodies("VolumeDriver.Create"),
        [json!({"Name": "es-data", "Opts": {"size": "5", "iops": "150"}})]
    );
    assert_eq!(
        env.bodies("VolumeDriver.Mount"),
        [json!({"Name": "es-data", "ID": "dvdcli"})]
    );

    let out = env.dvdcli(&["unmount", "--volumedriver=test", "--volumename=es-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        env.bodies("VolumeDriver.Unmount"),
        [json!({"Name": "es-data", "ID": "dvdcli"})]
    );
    assert!(env.plugin.mount_ids("es-data").is_empty());
}

#[test]
fn mount_of_an_existing_volume_does_not_create_it() {
    let env = Env::new();
    env.plugin.add_volume("v", &[]);
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
    assert_eq!(env.plugin.count("VolumeDriver.Create"), 0);
}

#[test]
fn mesos_mounts_once_per_container_and_unmounts_once() {
    // Mesos' built-in isolator runs `dvdcli mount` per container but one `dvdcli unmount`:
    // with the stable default ID the plugin's users come out even.
    let env = Env::new();
    for _ in 0..3 {
        let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=shared"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    assert_eq!(env.plugin.mount_ids("shared"), ["dvdcli"]);
    let out = env.dvdcli(&["unmount", "--volumedriver=test", "--volumename=shared"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.plugin.mount_ids("shared").is_empty());
}

#[test]
fn id_flag_overrides_the_mount_id() {
    let env = Env::new();
    for id in ["a", "b"] {
        let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v", "--id", id]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let mut ids = env.plugin.mount_ids("v");
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    let out = env.dvdcli(&["unmount", "--volumedriver=test", "--volumename=v", "--id=a"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.plugin.mount_ids("v"), ["b"]);
}

#[test]
fn flag_value_spelling_with_a_space() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver",
        "test",
        "--volumename",
        "v",
        "--volumeopts",
        "size=5",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
    assert_eq!(
        env.bodies("VolumeDriver.Create"),
        [json!({"Name": "v", "Opts": {"size": "5"}})]
    );
}

#[test]
fn flags_before_the_subcommand() {
    let env = Env::new();
    let out = env.dvdcli(&["--volumedriver=test", "--volumename=v", "mount"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
    let out = env.dvdcli(&["--volumedriver", "test", "unmount", "--volumename", "v"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn create_get_path_list_remove_stdout() {
    let env = Env::new();
    let run = |args: &[&str]| {
        let out = env.dvdcli(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out).to_owned()
    };
    assert_eq!(
        run(&[
            "create",
            "--volumedriver=test",
            "--volumename=a",
            "--volumeopts=k=v"
        ]),
        ""
    );
    assert_eq!(
        run(&["create", "--volumedriver=test", "--volumename=b"]),
        ""
    );
    assert_eq!(
        env.bodies("VolumeDriver.Create")[1],
        json!({"Name": "b", "Opts": {}})
    );
    assert_eq!(
        run(&["get", "--volumedriver=test", "--volumename=a"]),
        "a\n"
    );
    let mut names: Vec<String> = run(&["list", "--volumedriver=test"])
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    // Not mounted: the test plugin reports no mount point and Path has none either.
    assert_eq!(run(&["path", "--volumedriver=test", "--volumename=a"]), "");
    let mounted = run(&["mount", "--volumedriver=test", "--volumename=a"]);
    assert_eq!(
        run(&["path", "--volumedriver=test", "--volumename=a"]),
        mounted
    );
    assert_eq!(
        run(&["unmount", "--volumedriver=test", "--volumename=a"]),
        ""
    );
    assert_eq!(
        run(&["remove", "--volumedriver=test", "--volumename=a"]),
        ""
    );
    assert_eq!(run(&["list", "--volumedriver=test"]), "b\n");
}

#[test]
fn get_of_a_missing_volume_fails_with_empty_stdout() {
    let env = Env::new();
    let out = env.dvdcli(&["get", "--volumedriver=test", "--volumename=nope"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("\"nope\""), "{}", stderr(&out));
}

#[test]
fn fix_volumeopts_value_keeps_second_equals() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "create",
        "--volumedriver=test",
        "--volumename=nfs",
        "--volumeopts=o=addr=10.0.0.1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.bodies("VolumeDriver.Create"),
        [json!({"Name": "nfs", "Opts": {"o": "addr=10.0.0.1"}})]
    );
}

#[test]
fn fix_volumeopts_item_without_equals_continues_previous_value() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=nfs",
        "--volumeopts=type=nfs,o=addr=10.0.0.1,rw,device=:/export",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.bodies("VolumeDriver.Create"),
        [
            json!({"Name": "nfs", "Opts": {"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export"}})
        ]
    );
}

#[test]
fn fix_volumeopts_first_item_without_equals_is_a_usage_error() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=v",
        "--volumeopts=rw",
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("\"rw\""), "{}", stderr(&out));
    assert!(
        env.plugin.calls().is_empty(),
        "no plugin call on a usage error"
    );
}

#[test]
fn fix_json_plugin_spec_works() {
    let env = Env::new();
    let specs = env.dir.path().join("specs");
    std::fs::create_dir_all(specs.join("viajson")).unwrap();
    let spec = json!({
        "Name": "viajson",
        "Addr": format!("unix://{}", env.plugin.socket_path().display()),
        "TLSConfig": {"InsecureSkipVerify": false, "CAFile": "", "CertFile": "", "KeyFile": ""},
    });
    std::fs::write(specs.join("viajson/viajson.json"), spec.to_string()).unwrap();
    let out = command(&workspace_bin("dvdcli"))
        .args(["mount", "--volumedriver=viajson", "--volumename=v"])
        .env("DVDI_PLUGIN_DIRS", &specs)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
}

#[test]
fn spec_file_with_unix_url_works() {
    let env = Env::new();
    let specs = env.dir.path().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(
        specs.join("viaspec.spec"),
        format!("unix://{}\n", env.plugin.socket_path().display()),
    )
    .unwrap();
    let out = command(&workspace_bin("dvdcli"))
        .args(["list", "--volumedriver=viaspec"])
        .env("DVDI_PLUGIN_DIRS", &specs)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn fix_every_call_has_a_deadline() {
    let env = Env::new();
    env.plugin
        .set_fault("VolumeDriver.Mount", Fault::Hang, None);
    let started = Instant::now();
    let out = env.dvdcli_env(
        &["mount", "--volumedriver=test", "--volumename=v"],
        &[("DVDI_TIMEOUT", "1")],
    );
    let took = started.elapsed();
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("VolumeDriver.Mount")
            && err.contains("\"test\"")
            && err.contains("timed out after 1 s"),
        "{err}"
    );
    // Generous margin: the point is that it returns at all.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn fix_explicitcreate_false_means_false() {
    let env = Env::new();
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=v",
        "--explicitcreate",
        "false",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.plugin.count("VolumeDriver.Create"), 1);
}

#[test]
fn fix_explicit_create_dvdi_spelling_is_accepted() {
    let env = Env::new();
    // Missing volume + explicit create: fails, nothing created.
    for flag in [
        "--explicitCreate",
        "--explicitcreate",
        "--explicitcreate=true",
        "--explicitCreate=TRUE",
    ] {
        let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v", flag]);
        assert_eq!(code(&out), 1, "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains("explicit"), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(env.plugin.count("VolumeDriver.Create"), 0);
    // Existing volume + explicit create: mounts.
    env.plugin.add_volume("v", &[]);
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=v",
        "--explicitCreate",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
}

#[test]
fn explicit_create_with_a_plugin_that_errors_on_get() {
    let env = Env::with(PluginOptions {
        get_missing_as_error: true,
        ..Default::default()
    });
    let out = env.dvdcli(&[
        "mount",
        "--volumedriver=test",
        "--volumename=v",
        "--explicitcreate",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(env.plugin.count("VolumeDriver.Create"), 0);
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.plugin.count("VolumeDriver.Create"), 1);
}

#[test]
fn fix_unknown_flag_is_a_usage_error() {
    let env = Env::new();
    for args in [
        &["mount", "--volumedriver=test", "--volumename=v", "--bogus"][..],
        &["frobnicate"][..],
        &["mount", "--volumename=v"][..],
        &["mount", "--volumedriver=test"][..],
        &[
            "get",
            "--volumedriver=test",
            "--volumename=v",
            "--volumeopts=a=b",
        ][..],
        &["mount", "--volumedriver=../etc", "--volumename=v"][..],
        &["mount", "--volumedriver=test", "--volumename=a/b"][..],
    ] {
        let out = env.dvdcli(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    assert!(env.plugin.calls().is_empty());
}

#[test]
fn plugin_errors_keep_their_text() {
    let env = Env::new();
    env.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::ErrorIn200("backend is sad".into()),
        Some(1),
    );
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("backend is sad"), "{}", stderr(&out));

    env.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::Status {
            code: 500,
            body: r#"{"Err":"array offline"}"#.into(),
            content_type: "application/json".into(),
        },
        Some(1),
    );
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert!(
        stderr(&out).contains("VolumeDriver.Mount: array offline"),
        "{}",
        stderr(&out)
    );

    env.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::Status {
            code: 404,
            body: "<html><body>404 page not found</body></html>".into(),
            content_type: "text/html".into(),
        },
        Some(1),
    );
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("VolumeDriver.Mount: <html><body>404 page not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_reply_with_conflicting_lengths_is_a_framing_error() {
    // Issue 10, finding 6 (RFC 9112 §6.3): the old reader took the last Content-Length and
    // went on as if the reply were sound.
    let env = Env::new();
    env.plugin
        .set_fault("VolumeDriver.Get", Fault::ConflictingLengths, Some(1));
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("VolumeDriver.Get") && err.contains("conflicting Content-Length"),
        "{err}"
    );
    assert_eq!(env.plugin.count("VolumeDriver.Mount"), 0);
}

#[test]
fn a_dead_plugin_is_named_once_with_a_readable_duration() {
    // Issue 10, finding 9: `cannot connect to unix:///…/dead.sock (retried for 1.000107662s):
    // Connection refused (os error 111): cannot connect to …` — each cause printed up to three
    // times, with nanoseconds.
    let env = Env::new();
    let dead = env.plugin_dir().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let out = env.dvdcli_env(
        &["mount", "--volumedriver=dead", "--volumename=v"],
        &[("DVDI_CONNECT_TIMEOUT", "1")],
    );
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(err.matches("cannot connect").count(), 1, "{err}");
    // The window it retried for, measured: 1 s, or a little more on a loaded machine, in
    // at most three significant digits (`1 s`, `1.01 s`), never nanoseconds.
    let waited = err
        .split("(retried for ")
        .nth(1)
        .and_then(|rest| rest.split(" s)").next())
        .unwrap_or_else(|| panic!("no retry duration in {err}"));
    let seconds: f64 = waited
        .parse()
        .unwrap_or_else(|_| panic!("{waited:?} in {err}"));
    assert!((1.0..2.0).contains(&seconds), "{err}");
    assert!(
        waited.len() <= 4,
        "more than three significant digits: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A regular file where the socket should be is "not a socket", not "not found".
    std::fs::write(env.plugin_dir().join("file.sock"), "").unwrap();
    let out = env.dvdcli(&["mount", "--volumedriver=file", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("file.sock is not a socket"), "{err}");
    assert!(!err.contains("not found"), "{err}");
}

#[test]
fn a_mount_point_that_cannot_be_used_is_refused_and_the_mount_undone() {
    // Issue 10, finding 5: a relative Mountpoint was resolved wherever dvdcli ran (inside a
    // task's sandbox, for the isolator), one with a line break made `dvdcli mount` print two
    // lines (Mesos takes the whole stdout as one path), and a missing or non-directory one was
    // printed as if it were fine.
    let env = Env::new();
    let root = env.dir.path();
    std::fs::write(root.join("a-file"), "").unwrap();
    std::fs::create_dir(root.join("a-dir")).unwrap();
    std::os::unix::fs::symlink(root.join("a-dir"), root.join("a-link")).unwrap();
    let path = |name: &str| root.join(name).display().to_string();
    for (mountpoint, want) in [
        ("foo".to_owned(), "is not an absolute path"),
        (
            format!("{}\n/etc", path("a-dir")),
            "has control or non-printable characters",
        ),
        (
            format!("{}/../a-dir", path("a-dir")),
            "is not in normal form",
        ),
        (path("absent"), "does not exist"),
        (path("a-file"), "is not a directory"),
        (path("a-link"), "is a symbolic link"),
    ] {
        env.plugin.set_fault(
            "VolumeDriver.Mount",
            Fault::Mountpoint(mountpoint.clone()),
            Some(1),
        );
        let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{mountpoint:?}: {err}");
        assert_eq!(stdout(&out), "", "{mountpoint:?}");
        assert_eq!(err.lines().count(), 1, "{mountpoint:?}: {err}");
        for part in [
            "plugin \"test\"",
            "VolumeDriver.Mount of volume \"v\"",
            &format!("mount point {mountpoint:?} {want}"),
            "the mount was undone with VolumeDriver.Unmount",
        ] {
            assert!(err.contains(part), "{mountpoint:?}: {part:?} not in {err}");
        }
        assert!(env.plugin.mount_ids("v").is_empty(), "{mountpoint:?}");
    }
    let unmounts: Vec<_> = env
        .plugin
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "VolumeDriver.Unmount")
        .collect();
    assert_eq!(unmounts.len(), 6);
    assert!(unmounts.iter().all(|c| c.body["ID"] == "dvdcli"));
    // And a good one still mounts.
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(stdout(&out), env.mountpoint("v"), "{}", stderr(&out));
}

#[test]
fn path_refuses_a_mount_point_that_is_not_a_path() {
    let env = Env::new();
    env.plugin.add_volume("v", &[]);
    env.plugin.set_fault(
        "VolumeDriver.Get",
        Fault::Mountpoint("rel/dir".into()),
        Some(1),
    );
    let out = env.dvdcli(&["path", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"VolumeDriver.Get of volume "v": mount point "rel/dir" is not an absolute path"#
        ),
        "{err}"
    );
}

#[test]
fn plugin_text_reaches_stderr_and_stdout_escaped() {
    // Issue 10, finding 5: a plugin's Err text went to stderr raw (escape sequences, line
    // breaks), and `dvdcli list` printed a name with a line break as two names.
    let env = Env::new();
    env.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::ErrorIn200("\u{1b}[2J\u{1b}[31mall good\nreally".into()),
        Some(1),
    );
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains(r"\u{1b}[2J\u{1b}[31mall good\nreally"),
        "{err}"
    );

    env.plugin.set_fault(
        "VolumeDriver.List",
        Fault::ListNames(vec!["a\nb".into(), "c\u{1b}[0m".into(), "d".into()]),
        Some(1),
    );
    let out = env.dvdcli(&["list", "--volumedriver=test"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\\nb\nc\\u{1b}[0m\nd\n");
}

#[test]
fn missing_plugin_names_the_driver_and_directories() {
    let env = Env::new();
    let out = env.dvdcli(&["mount", "--volumedriver=absent", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("\"absent\"") && err.contains(&env.plugin_dir().display().to_string()),
        "{err}"
    );
}

#[test]
fn activate_without_volume_driver_is_refused() {
    let env = Env::new();
    env.plugin
        .set_fault("Plugin.Activate", Fault::NotVolumeDriver, None);
    let out = env.dvdcli(&["mount", "--volumedriver=test", "--volumename=v"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("plugin test does not implement VolumeDriver"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.plugin.count("VolumeDriver.Mount"), 0);
}

#[test]
fn version_is_filled_in() {
    let out = command(&workspace_bin("dvdcli"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let keys: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        ["Binary", "SemVer", "OsArch", "Branch", "Commit", "Formed"]
    );
    for line in text.lines() {
        let value = line.split_once(": ").map(|(_, v)| v.trim()).unwrap_or("");
        assert!(!value.is_empty(), "empty field: {line}");
    }
    assert!(text.contains(&format!("SemVer: {}\n", env!("CARGO_PKG_VERSION"))));
    assert!(Path::new(text.lines().next().unwrap().trim_start_matches("Binary: ")).exists());
}

#[test]
fn help_goes_to_stdout_with_status_zero() {
    let out = command(&workspace_bin("dvdcli"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("mount"));
}

/// The long flags of a help text's option lines (`  --flag …` or `  -h, --flag …`).
fn help_flags(help: &str) -> Vec<String> {
    help.lines()
        .map(|l| l.trim_start())
        .map(|l| match l.strip_prefix('-') {
            Some(short) if !short.starts_with('-') => short.get(3..).unwrap_or(""),
            _ => l,
        })
        .filter_map(|l| l.strip_prefix("--"))
        .map(|rest| format!("--{}", rest.split([' ', ',']).next().unwrap_or("")))
        .collect()
}

#[test]
fn each_subcommand_help_shows_only_its_own_flags() {
    let volume = ["--volumedriver", "--volumename"];
    let cases: [(&str, Vec<&str>); 11] = [
        ("create", [&volume[..], &["--volumeopts"]].concat()),
        (
            "mount",
            [&volume[..], &["--volumeopts", "--explicitcreate", "--id"]].concat(),
        ),
        ("unmount", [&volume[..], &["--id"]].concat()),
        ("remove", volume.to_vec()),
        ("path", volume.to_vec()),
        ("get", volume.to_vec()),
        ("list", vec!["--volumedriver"]),
        ("version", vec![]),
        ("exec", vec![]),
        ("inspect", vec!["--json"]),
        ("recover", vec!["--json"]),
    ];
    for (sub, own) in cases {
        for args in [[sub, "--help"], ["help", sub]] {
            let out = command(&workspace_bin("dvdcli"))
                .args(args)
                .output()
                .unwrap();
            assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
            let mut expected: Vec<String> = own.iter().map(|f| f.to_string()).collect();
            expected.push("--help".into());
            assert_eq!(
                help_flags(stdout(&out)),
                expected,
                "{args:?}:\n{}",
                stdout(&out)
            );
        }
    }
}

#[test]
fn root_help_lists_every_subcommand_and_says_flags_may_lead() {
    let out = command(&workspace_bin("dvdcli"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let help = stdout(&out);
    for sub in [
        "create", "remove", "mount", "unmount", "path", "get", "list", "version", "exec",
        "inspect", "recover",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing:\n{help}"
        );
    }
    assert_eq!(help_flags(help), ["--help"], "{help}");
    assert!(
        help.contains("dvdcli --volumedriver=D --volumename=N mount"),
        "{help}"
    );
}

#[test]
fn flags_before_the_subcommand_go_to_it_and_only_where_it_takes_them() {
    let env = Env::new();
    // Every mount flag may lead; `--explicitcreate` there is the flag, not a value.
    let out = env.dvdcli(&[
        "--volumedriver=test",
        "--volumename=v",
        "--explicitcreate",
        "mount",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("explicit"), "{}", stderr(&out));
    let out = env.dvdcli(&[
        "--volumeopts=size=5",
        "--id",
        "a",
        "--explicitCreate=false",
        "mount",
        "--volumedriver=test",
        "--volumename=v",
        "--volumeopts=iops=150",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), env.mountpoint("v"));
    assert_eq!(
        env.bodies("VolumeDriver.Create"),
        [json!({"Name": "v", "Opts": {"size": "5", "iops": "150"}})]
    );
    assert_eq!(env.plugin.mount_ids("v"), ["a"]);
    // The flag after the subcommand wins over the one before it.
    let out = env.dvdcli(&[
        "--id=b",
        "unmount",
        "--volumedriver=test",
        "--volumename=v",
        "--id=a",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.plugin.mount_ids("v").is_empty());
    // Go dvdcli's persistent flags stay accepted where it accepted them and are ignored there.
    let out = env.dvdcli(&["--volumename=v", "list", "--volumedriver=test"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "v\n");
    let out = env.dvdcli(&["--volumedriver=test", "version"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A leading flag the subcommand does not take is a usage error, as it is after it.
    let calls = env.plugin.calls().len();
    for args in [
        &[
            "--volumeopts=a=b",
            "get",
            "--volumedriver=test",
            "--volumename=v",
        ][..],
        &[
            "--explicitcreate",
            "unmount",
            "--volumedriver=test",
            "--volumename=v",
        ][..],
        &["--id=a", "remove", "--volumedriver=test", "--volumename=v"][..],
        &["--volumedriver=test", "inspect"][..],
        &["--volumename=v", "recover"][..],
        &["--volumeopts=a=b", "exec", "--", "true"][..],
    ] {
        let out = env.dvdcli(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(
            stderr(&out).contains("is not accepted by"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(env.plugin.calls().len(), calls);
}
