//! `dvdcli` with a CSI plugin (root): `create`, `mount`, `unmount`, `remove`, `list` and
//! `exec` through the CSI test plugin over its real Unix socket, with real bind mounts, exactly
//! as with a Docker plugin or `local`: the Elasticsearch node's two volumes written on one
//! agent and read by its replacement on another, a node-only plugin's pre-provisioned volume,
//! and errors that name the plugin, its file and the call.

use std::path::PathBuf;
use std::process::{Command, Output};

use dvdi_testkit::csi_plugin::{CsiFault, CsiPluginOptions};
use dvdi_testkit::env::{command, require_root, workspace_bin};

mod common;
use common::csi::{CsiWorld, DRIVER};

fn dvdcli(world: &CsiWorld, agent: &str, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let sandbox = world.path(&format!("agent-{agent}/sandbox"));
    std::fs::create_dir_all(&sandbox).unwrap();
    let mut cmd = command(&workspace_bin("dvdcli"));
    cmd.args(args).current_dir(sandbox);
    for (k, v) in world.vars(agent) {
        cmd.env(k, v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn run(world: &CsiWorld, agent: &str, args: &[&str]) -> Output {
    dvdcli(world, agent, args, &[]).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

const D: &str = "--volumedriver=csitest";

#[test]
fn create_mount_unmount_remove_and_list_through_a_csi_plugin() {
    if !require_root("create_mount_unmount_remove_and_list_through_a_csi_plugin") {
        return;
    }
    let world = CsiWorld::new();
    ok(&run(
        &world,
        "a",
        &["create", D, "--volumename=esdata", "--volumeopts=size=64M"],
    ));
    assert_eq!(world.plugin.volumes(), ["vol-esdata"]);
    assert_eq!(world.plugin.count("CreateVolume"), 1);
    assert!(world.leftovers().is_empty(), "create publishes nothing");
    assert_eq!(ok(&run(&world, "a", &["list", D])).trim(), "esdata");

    let mountpoint = ok(&run(&world, "a", &["mount", D, "--volumename=esdata"]));
    let target = world.root("a").join("esdata/target");
    assert_eq!(PathBuf::from(mountpoint.trim()), target);
    assert!(world.mounts().contains(&target), "{:?}", world.mounts());
    assert_eq!(world.plugin.staged().len(), 1);
    assert_eq!(
        world.plugin.published(),
        [("vol-esdata".to_owned(), target.clone())]
    );
    assert_eq!(
        world.plugin.controller_published(),
        [("vol-esdata".to_owned(), "node-1".to_owned())]
    );
    std::fs::write(target.join("hello"), "on the volume").unwrap();
    assert_eq!(
        std::fs::read_to_string(world.plugin.volume_dir("vol-esdata").join("hello")).unwrap(),
        "on the volume"
    );
    assert_eq!(
        ok(&run(&world, "a", &["path", D, "--volumename=esdata"])).trim(),
        target.to_str().unwrap()
    );

    ok(&run(&world, "a", &["unmount", D, "--volumename=esdata"]));
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());

    ok(&run(&world, "a", &["remove", D, "--volumename=esdata"]));
    assert_eq!(world.plugin.count("DeleteVolume"), 1);
    assert!(world.plugin.volumes().is_empty());
    assert_eq!(ok(&run(&world, "a", &["list", D])).trim(), "");
    assert!(
        !world.root("a").join("esdata").exists(),
        "the host's record goes too"
    );
}

#[test]
fn every_agent_gets_the_same_volume_by_its_name() {
    if !require_root("every_agent_gets_the_same_volume_by_its_name") {
        return;
    }
    let world = CsiWorld::new();
    // An implicit create on each agent: CreateVolume by name answers the same volume.
    let a = ok(&run(
        &world,
        "a",
        &["mount", D, "--volumename=shared", "--volumeopts=size=64M"],
    ));
    std::fs::write(PathBuf::from(a.trim()).join("from-a"), "a").unwrap();
    ok(&run(&world, "a", &["unmount", D, "--volumename=shared"]));
    let b = ok(&run(
        &world,
        "b",
        &["mount", D, "--volumename=shared", "--volumeopts=size=64M"],
    ));
    assert_eq!(
        PathBuf::from(b.trim()),
        world.root("b").join("shared/target")
    );
    assert_eq!(
        std::fs::read_to_string(PathBuf::from(b.trim()).join("from-a")).unwrap(),
        "a"
    );
    assert_eq!(world.plugin.volumes(), ["vol-shared"], "one volume, one id");
    assert_eq!(world.plugin.count("CreateVolume"), 2);
    ok(&run(&world, "b", &["unmount", D, "--volumename=shared"]));
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());

    // A create asking for another size is the plugin's ALREADY_EXISTS, named.
    let out = run(
        &world,
        "b",
        &["create", D, "--volumename=shared", "--volumeopts=size=128M"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for needle in ["\"csitest\"", "CreateVolume", "ALREADY_EXISTS"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn a_node_only_plugin_serves_a_preprovisioned_volume_by_its_name() {
    if !require_root("a_node_only_plugin_serves_a_preprovisioned_volume_by_its_name") {
        return;
    }
    let options = CsiPluginOptions {
        controller: false,
        controller_publish: false,
        ..CsiPluginOptions::default()
    };
    let world = CsiWorld::with(options, false);
    world.plugin.add_volume("esdata").unwrap();
    let mountpoint = ok(&run(&world, "a", &["mount", D, "--volumename=esdata"]));
    std::fs::write(PathBuf::from(mountpoint.trim()).join("f"), "x").unwrap();
    assert!(world.plugin.volume_dir("esdata").join("f").exists());
    ok(&run(&world, "a", &["unmount", D, "--volumename=esdata"]));
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());
    let calls = world.plugin.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("Controller") || c == "CreateVolume"),
        "a node-only plugin gets no controller call: {calls:?}"
    );
    assert!(calls.iter().any(|c| c == "NodeStageVolume"));
    // Removing forgets it on this host; a pre-provisioned volume is not deleted.
    ok(&run(&world, "a", &["remove", D, "--volumename=esdata"]));
    assert_eq!(world.plugin.volumes(), ["esdata"]);
}

#[test]
fn the_elasticsearch_node_through_dvdcli_exec_and_its_replacement_on_another_agent() {
    if !require_root(
        "the_elasticsearch_node_through_dvdcli_exec_and_its_replacement_on_another_agent",
    ) {
        return;
    }
    let world = CsiWorld::new();
    // The framework's two volumes: config and data, on the CSI driver.
    let node = [
        ("DVDI_VOLUME_DRIVER", DRIVER),
        ("DVDI_VOLUME_NAME", "esnode1config"),
        ("DVDI_VOLUME_OPTS", "size=16M"),
        ("DVDI_VOLUME_CONTAINERPATH", "config"),
        ("DVDI_VOLUME_DRIVER1", DRIVER),
        ("DVDI_VOLUME_NAME1", "esnode1data"),
        ("DVDI_VOLUME_OPTS1", "size=64M"),
        ("DVDI_VOLUME_CONTAINERPATH1", "data"),
    ];
    let exec = |agent: &str, script: &str| {
        dvdcli(&world, agent, &["exec", "--", "sh", "-c", script], &node)
            .output()
            .unwrap()
    };
    let out = exec(
        "a",
        "echo 'cluster.name: es' > config/elasticsearch.yml && echo 'doc 1' > data/index && grep -q ' config ' /proc/self/mountinfo || true",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        world.leftovers().is_empty(),
        "after agent a: {:?}",
        world.leftovers()
    );
    assert!(
        !world.path("agent-a/sandbox/data/index").exists(),
        "the write must land on the volume"
    );

    // The replacement node on agent b reads what a wrote.
    let out = exec("b", "cat config/elasticsearch.yml data/index");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "cluster.name: es\ndoc 1\n");
    assert!(
        world.leftovers().is_empty(),
        "after agent b: {:?}",
        world.leftovers()
    );
    assert_eq!(
        world.plugin.volumes(),
        ["vol-esnode1config", "vol-esnode1data"]
    );
}

#[test]
fn errors_name_the_plugin_its_file_and_the_call_and_secrets_stay_secret() {
    if !require_root("errors_name_the_plugin_its_file_and_the_call_and_secrets_stay_secret") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let world = CsiWorld::new();
    let file = world.config_dir("a").join("csitest.json");

    // A misspelt key is an error naming the file and the key, not a node-only plugin.
    world.write_config("a", r#","controler_endpoint":"unix:///x""#);
    let out = run(&world, "a", &["mount", D, "--volumename=v"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(file.to_str().unwrap()) && err.contains("unknown field `controler_endpoint`"),
        "{err}"
    );

    // The file says another plugin is at the socket.
    std::fs::write(
        &file,
        format!(
            r#"{{"node_endpoint":"unix://{}","root":"{}","plugin_name":"ebs.csi.aws.com"}}"#,
            world.plugin.socket().display(),
            world.root("a").display()
        ),
    )
    .unwrap();
    let out = run(&world, "a", &["mount", D, "--volumename=v"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("\"csitest\"")
            && err.contains("GetPluginInfo")
            && err.contains("\"test.csi.dvdi\"")
            && err.contains("\"ebs.csi.aws.com\""),
        "{err}"
    );

    // A secrets file others can read is refused, and never quoted.
    let secrets = world.path("secrets.json");
    std::fs::write(&secrets, r#"{"password":"hunter2"}"#).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        &file,
        format!(
            r#"{{"node_endpoint":"unix://{}","root":"{}","node_secrets":"{}"}}"#,
            world.plugin.socket().display(),
            world.root("a").display(),
            secrets.display()
        ),
    )
    .unwrap();
    let out = run(&world, "a", &["mount", D, "--volumename=v"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(secrets.to_str().unwrap()) && !err.contains("hunter2"),
        "{err}"
    );
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A call the plugin fails: the code and the plugin's words, escaped; nothing left.
    world.plugin.set_fault(
        "NodeStageVolume",
        CsiFault::Error {
            code: "RESOURCE_EXHAUSTED".into(),
            message: "no attach slots\n\u{1b}[31m".into(),
        },
        None,
    );
    world.plugin.add_volume("v").unwrap();
    let out = run(&world, "a", &["mount", D, "--volumename=v"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "NodeStageVolume of \"v\" failed: RESOURCE_EXHAUSTED: no attach slots\\n\\u{1b}[31m"
        ),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "plugin text is escaped: {err:?}");
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());
    // A file that is no CSI plugin's at all: a Docker plugin is looked for, as before.
    std::fs::remove_file(&file).unwrap();
    let out = run(&world, "a", &["mount", D, "--volumename=v"]);
    assert!(
        text(&out.stderr).contains("plugin \"csitest\" not found"),
        "{}",
        text(&out.stderr)
    );
}
