//! A CSI plugin through the C ABI, as the module shim drives it (root): the Elasticsearch
//! framework's own environment (the captured `prepare` of its bare-JAR executor, the driver
//! and container paths rewritten) with both volumes on the CSI test plugin over its real Unix
//! socket. A node on agent A writes config and data; A dies; the replacement node on agent B —
//! another host: its own checkpoint, its own CSI root and its own node plugin (node id
//! `node-2`) over the same controller state — reads both; A's recover then releases only what
//! A held, and B's cleanup leaves nothing staged, published, controller-published or mounted.

use std::path::{Path, PathBuf};

mod common;

use common::{read_in_container, write_in_container, Handle};
use dvdi_testkit::buttervolume::mounts_under;
use dvdi_testkit::csi_plugin::{CsiPluginOptions, CsiTestPlugin};
use dvdi_testkit::env::{require_root, workspace_bin};
use dvdi_testkit::fixtures::mesos as fixture;
use serde_json::{json, Value};

const DRIVER: &str = "csitest";

fn agent(dir: &Path, name: &str, plugin: &CsiTestPlugin) -> Handle {
    let root = dir.join(format!("agent-{name}"));
    plugin.write_operator_file(
        &root.join(format!("csi.d/{DRIVER}.json")),
        &root.join("csi"),
        true,
        "",
    );
    Handle::new(&json!({
        "checkpoint_dir": root.join("checkpoint").to_str().unwrap(),
        "plugin_dirs": dir.join("no-plugins").to_str().unwrap(),
        "local_root": root.join("local").to_str().unwrap(),
        "csi_config_dir": root.join("csi.d").to_str().unwrap(),
        "csi_client": workspace_bin("dvdi-csi").to_str().unwrap(),
        "timeout": "20",
    }))
    .unwrap_or_else(|(s, e)| panic!("{s:?}: {e}"))
}

/// The framework's executor `prepare`, its volumes on the CSI driver at `config` and `data`
/// under a fresh sandbox.
fn es_node(dir: &Path, container: &str) -> (Value, PathBuf) {
    let mut args = fixture("prepare-es-framework-literal-env.json");
    let sandbox = dir.join(format!("sandboxes/{container}"));
    std::fs::create_dir_all(&sandbox).unwrap();
    args["container_id"] = json!({ "value": container });
    args["container_config"]["directory"] = json!(sandbox.to_str().unwrap());
    // Wherever the agent repeats the executor's environment (command, executor, task).
    rewrite_env(&mut args["container_config"]);
    (args, sandbox)
}

fn rewrite_env(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // The framework gives the data volume's path as a second unsuffixed
            // DVDI_VOLUME_CONTAINERPATH: told apart by value, the shape kept as it is.
            let name = map.get("name").and_then(Value::as_str);
            let value = map.get("value").and_then(Value::as_str);
            if let (Some(name), Some(value)) = (name, value) {
                let new = match (name, value) {
                    ("DVDI_VOLUME_DRIVER" | "DVDI_VOLUME_DRIVER1", _) => Some(DRIVER),
                    ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config") => Some("config"),
                    ("DVDI_VOLUME_CONTAINERPATH", "/data") => Some("data"),
                    _ => None,
                };
                if let Some(new) = new {
                    map.insert("value".into(), json!(new));
                }
            }
            map.values_mut().for_each(rewrite_env);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_env),
        _ => {}
    }
}

#[test]
fn an_elasticsearch_node_on_a_csi_plugin_is_read_by_its_replacement_on_another_agent() {
    if !require_root(
        "an_elasticsearch_node_on_a_csi_plugin_is_read_by_its_replacement_on_another_agent",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let node1 = CsiTestPlugin::start(&dir.join("plugin-1")).unwrap();
    // Host B's node plugin shares the controller's state (the volumes) with host A's.
    std::fs::create_dir_all(dir.join("plugin-2")).unwrap();
    std::os::unix::fs::symlink(node1.state_dir(), dir.join("plugin-2/state")).unwrap();
    let node2 = CsiTestPlugin::start_with(
        &dir.join("plugin-2"),
        CsiPluginOptions {
            node_id: Some("node-2".into()),
            ..CsiPluginOptions::default()
        },
    )
    .unwrap();
    let _unmount = Unmount(dir.to_path_buf());

    let a = agent(dir, "a", &node1);
    let (task, sandbox_a) = es_node(dir, "es-node-1-on-a");
    let launch = a
        .prepare(&task["container_id"], &task["container_config"])
        .unwrap()
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    let files = [
        sandbox_a.join("config/elasticsearch.yml"),
        sandbox_a.join("data/x"),
    ];
    assert_eq!(write_in_container(&launch, &files), [0, 0]);
    let mut volumes = node1.volumes();
    volumes.sort();
    assert_eq!(
        volumes,
        ["vol-elasticsearch1config", "vol-elasticsearch1data"]
    );
    assert_eq!(node1.published().len(), 2);
    drop(a); // agent A dies: no cleanup; its publications and checkpoint stay

    let b = agent(dir, "b", &node2);
    let (replacement, sandbox_b) = es_node(dir, "es-node-1-on-b");
    let launch = b
        .prepare(
            &replacement["container_id"],
            &replacement["container_config"],
        )
        .unwrap()
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    let read = read_in_container(
        &launch,
        &[
            sandbox_b.join("config/elasticsearch.yml"),
            sandbox_b.join("data/x"),
        ],
    );
    assert_eq!(
        read,
        ["x", "x"],
        "the replacement reads what the node wrote"
    );
    let mut nodes: Vec<String> = node1
        .controller_published()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["node-1", "node-1", "node-2", "node-2"]);

    // A comes back without its task: recover releases A's two, and only A's.
    let a = agent(dir, "a", &node1);
    let report: Value = serde_json::from_str(&a.recover(&json!([]), &json!([])).unwrap()).unwrap();
    assert_eq!(report["unmounted_volumes"], json!(2), "{report}");
    let root_b = dir.join("agent-b/csi");
    assert!(
        node1
            .published()
            .iter()
            .all(|(_, p)| p.starts_with(&root_b)),
        "{:?}",
        node1.published()
    );
    assert!(node1
        .controller_published()
        .iter()
        .all(|(_, n)| n == "node-2"));

    b.cleanup(&replacement["container_id"]).unwrap();
    assert!(node1.staged().is_empty(), "{:?}", node1.staged());
    assert!(node1.published().is_empty(), "{:?}", node1.published());
    assert!(node1.controller_published().is_empty());
    assert!(mounts_under(dir).is_empty(), "{:?}", mounts_under(dir));
    assert_eq!(
        node1.count("DeleteVolume"),
        0,
        "cleanup never deletes a volume"
    );
}

/// Lazily unmounts whatever a failed assertion left under the test's directory.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = dvdi_testkit::buttervolume::unmount_all_under(&self.0);
    }
}
