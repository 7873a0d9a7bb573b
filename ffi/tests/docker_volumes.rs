//! Mesos' own `DOCKER_VOLUME` volumes through the C ABI, as the module shim drives it, with
//! the `prepare`/`cleanup` arguments a real Mesos 1.12 agent sent (`tests/fixtures/mesos-1.12`,
//! only their host paths rewritten to temp dirs), real plugin servers on Unix sockets
//! (`TestPlugin`, named as in the fixtures) and the launch info carried out for real in a
//! second process's private mount namespace (root).

use std::path::PathBuf;

mod common;

use common::{read_in_container, write_in_container, Failed, Handle};
use dvdi_ffi::Status;
use dvdi_testkit::env::require_root;
use dvdi_testkit::fixtures::mesos as fixture;
use dvdi_testkit::plugin::TestPlugin;
use serde_json::{json, Value};

fn new_isolator(config: &Value) -> Handle {
    Handle::new(config).unwrap_or_else(|(s, e)| panic!("{s:?}: {e}"))
}

/// `prepare` with a fixture's `container_id` and `container_config`; the launch info as JSON.
fn prepare(iso: &Handle, args: &Value) -> Result<Option<Value>, Failed> {
    iso.prepare(&args["container_id"], &args["container_config"])
        .map(|info| info.map(|t| serde_json::from_str(&t).unwrap()))
}

fn cleanup(iso: &Handle, container_id: &Value) {
    iso.cleanup(container_id)
        .unwrap_or_else(|(s, e)| panic!("{s:?}: {e}"));
}

fn recover(iso: &Handle, states: &Value, orphans: &Value) -> Value {
    let report = iso
        .recover(states, orphans)
        .unwrap_or_else(|(s, e)| panic!("{s:?}: {e}"));
    serde_json::from_str(&report).unwrap()
}

// ---- the world: fixtures, plugins, module configuration ----

/// A temp dir with a checkpoint, a plugin directory holding one `TestPlugin` per driver
/// name, and sandboxes.
struct World {
    dir: tempfile::TempDir,
    plugins: Vec<(String, TestPlugin)>,
}

impl World {
    fn new(drivers: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let plugins = drivers
            .iter()
            .map(|d| {
                let p = TestPlugin::start(
                    &dir.path().join(format!("plugins/{d}.sock")),
                    &dir.path().join(format!("mnt/{d}")),
                )
                .unwrap();
                (d.to_string(), p)
            })
            .collect();
        World { dir, plugins }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn plugin(&self, driver: &str) -> &TestPlugin {
        &self.plugins.iter().find(|(d, _)| d == driver).unwrap().1
    }

    fn config(&self, extra: &[(&str, &str)]) -> Value {
        let mut config = json!({
            "checkpoint_dir": self.path("checkpoint").to_str().unwrap(),
            "plugin_dirs": self.path("plugins").to_str().unwrap(),
            "local_root": self.path("volumes").to_str().unwrap(),
            "connect_timeout": "1",
        });
        for (k, v) in extra {
            config[*k] = json!(v);
        }
        config
    }

    fn isolator(&self, extra: &[(&str, &str)]) -> Handle {
        new_isolator(&self.config(extra))
    }

    /// A fixture with its sandbox (`directory`) rewritten to a fresh one of this world.
    fn prepare_args(&self, name: &str, sandbox: &str) -> (Value, PathBuf) {
        let mut args = fixture(name);
        let dir = self.path(&format!("sandboxes/{sandbox}"));
        std::fs::create_dir_all(&dir).unwrap();
        args["container_config"]["directory"] = json!(dir.to_str().unwrap());
        (args, dir)
    }
}

fn endpoints(plugin: &TestPlugin, endpoint: &str) -> Vec<Value> {
    plugin
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == endpoint)
        .map(|c| c.body)
        .collect()
}

// ---- the tests ----

/// The command task with two `DOCKER_VOLUME`s (options on one, `RO` on the other), as the
/// agent sent it — the volumes also repeated in `executor_info.container` and
/// `task_info.container`: each is created with its options, mounted once, bound at its
/// sandbox path (created), the `RO` one really read-only; cleanup unmounts each once with
/// its Mount's id.
#[test]
fn the_agents_docker_volume_task_gets_each_volume_once_and_ro_read_only() {
    if !require_root("the_agents_docker_volume_task_gets_each_volume_once_and_ro_read_only") {
        return;
    }
    let world = World::new(&["capfast"]);
    let plugin = world.plugin("capfast");
    let iso = world.isolator(&[("docker_volumes", "true")]);
    let (args, sandbox) = world.prepare_args("prepare-docker-volume-task.json", "task");

    let launch = prepare(&iso, &args).unwrap().expect("a launch info");
    let creates = endpoints(plugin, "VolumeDriver.Create");
    assert_eq!(
        creates,
        [
            json!({"Name": "dv1", "Opts": {"size": "5"}}),
            json!({"Name": "dv2", "Opts": {}}),
        ]
    );
    assert_eq!(
        plugin.mount_changes(),
        [("dv1".into(), true), ("dv2".into(), true)],
        "one Mount per volume, whatever else repeats them"
    );
    assert!(sandbox.join("data").is_dir() && sandbox.join("ro").is_dir());
    let mounts = launch["mounts"].as_array().unwrap();
    assert_eq!(
        mounts.len(),
        3,
        "a bind each, and the RO one's read-only remount"
    );
    assert_eq!(launch["clone_namespaces"], json!([libc::CLONE_NEWNS]));
    let ro_target = sandbox.join("ro");
    let read_only: Vec<&Value> = mounts
        .iter()
        .filter(|m| m["flags"].as_u64().unwrap() & libc::MS_RDONLY != 0)
        .map(|m| &m["target"])
        .collect();
    assert_eq!(read_only, [&json!(ro_target.to_str().unwrap())]);

    let errnos = write_in_container(&launch, &[sandbox.join("data/x"), ro_target.join("x")]);
    assert_eq!(errnos, [0, libc::EROFS], "data is writable, ro is not");
    let mnt = world.path("mnt/capfast");
    assert!(mnt.join("dv1/x").is_file(), "the write reached the volume");
    assert!(!mnt.join("dv2/x").exists());

    cleanup(&iso, &fixture("cleanup-container.json")["container_id"]);
    // cleanup-container.json names another container: nothing of ours is released by it.
    assert_eq!(plugin.mount_changes().len(), 2);
    cleanup(&iso, &args["container_id"]);
    let ev = plugin.mount_events();
    assert_eq!(ev.len(), 4);
    for volume in ["dv1", "dv2"] {
        let ids: Vec<(&str, bool)> = ev
            .iter()
            .filter(|e| e.volume == volume)
            .map(|e| (e.id.as_str(), e.mounted))
            .collect();
        assert_eq!(ids.len(), 2, "{volume}: {ids:?}");
        assert_eq!(ids[0].0, ids[1].0, "{volume}: Unmount with the Mount's id");
        assert_eq!((ids[0].1, ids[1].1), (true, false));
    }
}

/// Off by default: an agent still running `docker/volume` mounts these itself, so the module
/// leaves them alone — no launch info, no plugin call, nothing recorded, and the sandbox
/// untouched.
#[test]
fn docker_volumes_are_left_alone_unless_turned_on() {
    let world = World::new(&["capfast"]);
    let iso = world.isolator(&[]);
    let (args, sandbox) = world.prepare_args("prepare-docker-volume-task.json", "task");
    assert_eq!(prepare(&iso, &args).unwrap(), None);
    assert!(world.plugin("capfast").calls().is_empty());
    assert_eq!(std::fs::read_dir(&sandbox).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(world.path("checkpoint/containers"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    // `false` said explicitly is the same.
    let iso = world.isolator(&[("docker_volumes", "false")]);
    assert_eq!(prepare(&iso, &args).unwrap(), None);
    assert!(world.plugin("capfast").calls().is_empty());
}

/// Task groups under the default executor: the executor's own container gets nothing; a
/// nested container (its id names its parent) gets its `DOCKER_VOLUME`, and, in another
/// nested container, its `DVDI_VOLUME_*` from its own `command_info`; a `DEBUG` container
/// gets none of its own. Cleanup takes the nested ids as the agent sends them.
#[test]
fn task_group_containers_get_their_own_volumes_and_debug_ones_none() {
    let world = World::new(&["capfast", "rexray"]);
    let iso = world.isolator(&[("docker_volumes", "true")]);
    let (executor, _) = world.prepare_args("prepare-task-group-executor.json", "executor");
    assert_eq!(prepare(&iso, &executor).unwrap(), None);

    let (dv, dv_sandbox) =
        world.prepare_args("prepare-task-group-nested-docker-volume.json", "nested-dv");
    assert!(dv["container_id"]["parent"].is_object());
    let launch = prepare(&iso, &dv).unwrap().expect("a launch info");
    assert_eq!(
        launch["mounts"][0]["target"],
        json!(dv_sandbox.join("vol").to_str().unwrap())
    );
    assert_eq!(
        launch["mounts"][0]["source"],
        json!(world.path("mnt/capfast/tgdv").to_str().unwrap())
    );

    let (env, env_sandbox) =
        world.prepare_args("prepare-task-group-nested-dvdi-env.json", "nested-env");
    let launch = prepare(&iso, &env).unwrap().expect("a launch info");
    assert_eq!(
        launch["mounts"][0]["target"],
        json!(env_sandbox.join("data").to_str().unwrap())
    );
    assert_eq!(
        world.plugin("rexray").mount_changes(),
        [("tgvol".into(), true)]
    );

    // `mesos task exec` into the first: a DEBUG container sharing its namespaces.
    let (mut debug, debug_sandbox) =
        world.prepare_args("prepare-task-group-nested-docker-volume.json", "debug");
    debug["container_config"]["container_class"] = json!("DEBUG");
    debug["container_id"]["value"] = json!("debug-1");
    assert_eq!(prepare(&iso, &debug).unwrap(), None);
    assert_eq!(
        world.plugin("capfast").mount_changes(),
        [("tgdv".into(), true)]
    );
    assert_eq!(std::fs::read_dir(&debug_sandbox).unwrap().count(), 0);

    cleanup(&iso, &dv["container_id"]);
    cleanup(&iso, &env["container_id"]);
    assert_eq!(
        world.plugin("capfast").mount_changes(),
        [("tgdv".into(), true), ("tgdv".into(), false)]
    );
    assert_eq!(
        world.plugin("rexray").mount_changes(),
        [("tgvol".into(), true), ("tgvol".into(), false)]
    );
}

/// One ledger for both grammars: a volume named by `DVDI_VOLUME_*` in container A (the
/// nested-env fixture) and by a `DOCKER_VOLUME` in container B (the nested docker-volume
/// fixture, its volume renamed to A's) is mounted once, and unmounted only after both are
/// cleaned up. It also survives an agent restart in between: recover keeps what the
/// running one holds.
#[test]
fn one_volume_by_env_in_one_container_and_docker_volume_in_another_is_mounted_once() {
    let world = World::new(&["rexray"]);
    let plugin = world.plugin("rexray");
    let config = [("docker_volumes", "true")];
    let iso = world.isolator(&config);
    let (a, _) = world.prepare_args("prepare-task-group-nested-dvdi-env.json", "a");
    let (mut b, _) = world.prepare_args("prepare-task-group-nested-docker-volume.json", "b");
    let dv = &mut b["container_config"]["container_info"]["volumes"][0]["source"]["docker_volume"];
    dv["driver"] = json!("rexray");
    dv["name"] = json!("tgvol");

    prepare(&iso, &a).unwrap().unwrap();
    prepare(&iso, &b).unwrap().unwrap();
    assert_eq!(endpoints(plugin, "VolumeDriver.Mount").len(), 1);

    cleanup(&iso, &a["container_id"]);
    assert_eq!(
        plugin.mount_changes(),
        [("tgvol".into(), true)],
        "B still holds it"
    );
    // The agent restarts knowing only B: B's hold is rebuilt, nothing is unmounted.
    drop(iso);
    let iso = world.isolator(&config);
    let report = recover(
        &iso,
        &json!([{"container_id": b["container_id"]}]),
        &json!([]),
    );
    assert_eq!(report["unmounted_volumes"], json!(0), "{report}");
    assert_eq!(report["kept_containers"], json!(1), "{report}");
    assert_eq!(plugin.mount_changes(), [("tgvol".into(), true)]);
    cleanup(&iso, &b["container_id"]);
    assert_eq!(
        plugin.mount_changes(),
        [("tgvol".into(), true), ("tgvol".into(), false)]
    );
}

/// Within one container, a `DVDI_VOLUME_*` slot and a `DOCKER_VOLUME` naming the same volume
/// at the same place are one mount; at another place, an error naming both, before anything
/// is touched.
#[test]
fn env_and_docker_volume_for_one_volume_in_one_container() {
    let world = World::new(&["capfast"]);
    let plugin = world.plugin("capfast");
    let iso = world.isolator(&[("docker_volumes", "true")]);
    let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", "same");
    args["container_config"]["command_info"]["environment"] = json!({"variables": [
        {"name": "DVDI_VOLUME_NAME", "type": "VALUE", "value": "dv1"},
        {"name": "DVDI_VOLUME_DRIVER", "type": "VALUE", "value": "capfast"},
        {"name": "DVDI_VOLUME_CONTAINERPATH", "type": "VALUE", "value": "data"},
    ]});
    let launch = prepare(&iso, &args).unwrap().unwrap();
    assert_eq!(launch["mounts"].as_array().unwrap().len(), 3);
    assert_eq!(
        plugin.mount_changes(),
        [("dv1".into(), true), ("dv2".into(), true)]
    );
    cleanup(&iso, &args["container_id"]);

    let before = plugin.calls().len();
    args["container_config"]["command_info"]["environment"]["variables"][2]["value"] =
        json!("elsewhere");
    args["container_id"]["value"] = json!("conflict");
    let (status, message) = prepare(&iso, &args).unwrap_err();
    assert_eq!(status, Status::InvalidInput, "{message}");
    for needle in [
        "DVDI_VOLUME_NAME",
        "container_info.volumes[0]",
        "\"dv1\"",
        "\"elsewhere\"",
        "\"data\"",
    ] {
        assert!(message.contains(needle), "{needle:?} missing: {message}");
    }
    assert_eq!(
        plugin.calls().len(),
        before,
        "refused before any plugin call"
    );
}

/// Bad entries are refused through the C ABI as invalid input, naming the entry and its
/// volume, before any plugin call or record.
#[test]
fn bad_docker_volumes_are_refused_naming_the_entry() {
    let world = World::new(&["capfast"]);
    let iso = world.isolator(&[("docker_volumes", "true")]);
    let cases: [(&str, Value, &[&str]); 4] = [
        (
            "mode",
            json!("rw"),
            &["container_info.volumes[1]", "\"dv2\"", "mode \"rw\""],
        ),
        (
            "name",
            json!(""),
            &["container_info.volumes[1]", "invalid volume name \"\""],
        ),
        (
            "driver",
            json!("a/b"),
            &["container_info.volumes[1]", "\"a/b\""],
        ),
        (
            "path",
            json!("x/../../etc"),
            &["container_info.volumes[1]", "\"dv2\"", ".."],
        ),
    ];
    for (n, (what, value, needles)) in cases.into_iter().enumerate() {
        let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", &format!("b{n}"));
        let v = &mut args["container_config"]["container_info"]["volumes"][1];
        match what {
            "mode" => v["mode"] = value,
            "path" => v["container_path"] = value,
            field => v["source"]["docker_volume"][field] = value,
        }
        let (status, message) = prepare(&iso, &args).unwrap_err();
        assert_eq!(status, Status::InvalidInput, "{what}: {message}");
        for needle in needles {
            assert!(
                message.contains(needle),
                "{what}: {needle:?} missing: {message}"
            );
        }
    }
    assert!(world.plugin("capfast").calls().is_empty());
}

/// Mesos' container-path rule for `DOCKER_VOLUME`s: an absolute path of a container without
/// an image must exist on the host (nothing is created there, `/tmp/` included); with an
/// image it is created inside the rootfs. The protected host directories apply as for the
/// environment's paths, naming the field.
#[test]
fn absolute_docker_volume_paths_follow_mesos_rule() {
    let world = World::new(&["capfast"]);
    let iso = world.isolator(&[("docker_volumes", "true")]);
    let one = |args: &mut Value, path: &str| {
        let volumes = &mut args["container_config"]["container_info"]["volumes"];
        volumes.as_array_mut().unwrap().truncate(1);
        volumes[0]["container_path"] = json!(path);
    };

    // Without an image: a missing host path is refused, and not created.
    let missing = world.path("host/missing");
    let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", "abs1");
    one(&mut args, missing.to_str().unwrap());
    let (status, message) = prepare(&iso, &args).unwrap_err();
    assert_eq!(status, Status::InvalidInput, "{message}");
    assert!(message.contains("must exist on the host"), "{message}");
    assert!(message.contains("container_info.volumes[0]"), "{message}");
    assert!(!missing.exists());
    // ... one that exists is bound there.
    std::fs::create_dir_all(&missing).unwrap();
    let launch = prepare(&iso, &args).unwrap().unwrap();
    assert_eq!(
        launch["mounts"][0]["target"],
        json!(missing.to_str().unwrap())
    );
    cleanup(&iso, &args["container_id"]);
    // ... and the host's system directories are refused, naming the field.
    let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", "abs2");
    one(&mut args, "/etc");
    let (status, message) = prepare(&iso, &args).unwrap_err();
    assert_eq!(status, Status::InvalidInput, "{message}");
    assert!(
        message.contains("container_info.volumes[0].container_path=\"/etc\""),
        "{message}"
    );

    // With an image: created inside the rootfs (its own /data did not exist).
    let rootfs = world.path("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", "abs3");
    one(&mut args, "/data/deep");
    args["container_config"]["rootfs"] = json!(rootfs.to_str().unwrap());
    let launch = prepare(&iso, &args).unwrap().unwrap();
    assert!(rootfs.join("data/deep").is_dir());
    assert_eq!(
        launch["mounts"][0]["target"],
        json!(rootfs.join("data/deep").to_str().unwrap())
    );
    cleanup(&iso, &args["container_id"]);
    // ... without following a symlink the image planted.
    let host_dir = world.path("host/elsewhere");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, rootfs.join("link")).unwrap();
    let (mut args, _) = world.prepare_args("prepare-docker-volume-task.json", "abs4");
    one(&mut args, "/link/x");
    args["container_config"]["rootfs"] = json!(rootfs.to_str().unwrap());
    let (status, message) = prepare(&iso, &args).unwrap_err();
    assert_eq!(status, Status::InvalidInput, "{message}");
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 0);
}

/// The motivating case with Mesos' own volumes: an Elasticsearch node whose config and data
/// volumes come as `DOCKER_VOLUME`s (the captured task's shape, its volumes renamed). The node
/// writes both on agent A; A dies without a cleanup; the replacement on agent B (its own
/// checkpoint, the same storage) mounts both with its own ids and reads what A wrote; A comes
/// back and its recover unmounts only A's mounts; B's cleanup unmounts B's.
#[test]
fn an_elasticsearch_node_written_on_one_agent_is_read_by_its_replacement_on_another() {
    if !require_root(
        "an_elasticsearch_node_written_on_one_agent_is_read_by_its_replacement_on_another",
    ) {
        return;
    }
    let world = World::new(&["rexray"]);
    let plugin = world.plugin("rexray");
    let agent = |name: &str| {
        let mut config = world.config(&[("docker_volumes", "true")]);
        config["checkpoint_dir"] = json!(world.path(&format!("agent-{name}")).to_str().unwrap());
        new_isolator(&config)
    };
    let node = |sandbox: &str, container: &str| {
        let (mut args, dir) = world.prepare_args("prepare-docker-volume-task.json", sandbox);
        args["container_id"] = json!({ "value": container });
        let volumes = &mut args["container_config"]["container_info"]["volumes"];
        for (i, (name, path)) in [("es1config", "config"), ("es1data", "data")]
            .iter()
            .enumerate()
        {
            volumes[i]["container_path"] = json!(path);
            volumes[i]["mode"] = json!("RW");
            volumes[i]["source"]["docker_volume"]["driver"] = json!("rexray");
            volumes[i]["source"]["docker_volume"]["name"] = json!(name);
        }
        (args, dir)
    };
    let ids = |mounted: bool| -> Vec<(String, String)> {
        plugin
            .mount_events()
            .into_iter()
            .filter(|e| e.mounted == mounted)
            .map(|e| (e.volume, e.id))
            .collect()
    };

    let a = agent("a");
    let (task, sandbox_a) = node("a", "es-node-1-on-a");
    let launch = prepare(&a, &task).unwrap().unwrap();
    let files = [sandbox_a.join("config/x"), sandbox_a.join("data/x")];
    assert_eq!(write_in_container(&launch, &files), [0, 0]);
    let a_mounts = ids(true);
    assert_eq!(a_mounts.len(), 2, "{a_mounts:?}");
    drop(a); // the agent dies: no cleanup, its mounts and checkpoint stay

    let b = agent("b");
    let (replacement, sandbox_b) = node("b", "es-node-1-on-b");
    let launch = prepare(&b, &replacement).unwrap().unwrap();
    let read = read_in_container(
        &launch,
        &[sandbox_b.join("config/x"), sandbox_b.join("data/x")],
    );
    assert_eq!(
        read,
        ["x", "x"],
        "the replacement reads what the node wrote"
    );
    let b_mounts: Vec<_> = ids(true).split_off(2);
    assert_eq!(b_mounts.len(), 2);
    assert!(
        b_mounts.iter().all(|m| !a_mounts.contains(m)),
        "B mounts with ids of its own: {b_mounts:?} vs {a_mounts:?}"
    );

    // A comes back; its task is gone, so recover releases what only it held.
    let a = agent("a");
    let report = recover(&a, &json!([]), &json!([]));
    assert_eq!(report["unmounted_volumes"], json!(2), "{report}");
    let mut unmounted = ids(false);
    unmounted.sort();
    let mut expected = a_mounts.clone();
    expected.sort();
    assert_eq!(
        unmounted, expected,
        "A's recover unmounts A's ids, never B's"
    );

    cleanup(&b, &replacement["container_id"]);
    let mut unmounted = ids(false);
    unmounted.sort();
    let mut all = a_mounts;
    all.extend(b_mounts);
    all.sort();
    assert_eq!(unmounted, all);
}
