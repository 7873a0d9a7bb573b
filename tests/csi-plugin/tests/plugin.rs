//! The CSI test plugin as a CO sees it: started through the testkit harness, driven with a
//! tonic client over its Unix socket, its mounts checked in `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpfman_csi::v1 as csi;
use bpfman_csi::v1::controller_client::ControllerClient;
use bpfman_csi::v1::identity_client::IdentityClient;
use bpfman_csi::v1::node_client::NodeClient;
use dvdi_testkit::buttervolume::{mount_points, unmount_all_under};
use dvdi_testkit::csi_plugin::{CsiFault, CsiPluginOptions, CsiTestPlugin};
use dvdi_testkit::env::require_root;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

/// A temporary directory whose mounts are undone before it is removed, even when a test
/// fails half-way.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().expect("temp dir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = unmount_all_under(self.0.path()) {
            eprintln!("cleaning up {}: {e}", self.0.path().display());
        }
    }
}

async fn channel(socket: &Path) -> Channel {
    let socket = socket.to_path_buf();
    Endpoint::try_from("http://[::]:50051")
        .expect("static endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await }
        }))
        .await
        .expect("connect to the plugin socket")
}

struct Clients {
    identity: IdentityClient<Channel>,
    controller: ControllerClient<Channel>,
    node: NodeClient<Channel>,
}

async fn clients(plugin: &CsiTestPlugin) -> Clients {
    let node = channel(plugin.socket()).await;
    let controller = channel(plugin.controller_socket()).await;
    Clients {
        identity: IdentityClient::new(node.clone()),
        controller: ControllerClient::new(controller),
        node: NodeClient::new(node),
    }
}

fn is_mounted(path: &Path) -> bool {
    mount_points().expect("mountinfo").iter().any(|m| m == path)
}

fn create(name: &str, bytes: i64) -> csi::CreateVolumeRequest {
    csi::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(csi::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        ..Default::default()
    }
}

fn controller_publish(id: &str, node: &str) -> csi::ControllerPublishVolumeRequest {
    csi::ControllerPublishVolumeRequest {
        volume_id: id.into(),
        node_id: node.into(),
        ..Default::default()
    }
}

fn stage(id: &str, staging: &Path) -> csi::NodeStageVolumeRequest {
    csi::NodeStageVolumeRequest {
        volume_id: id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        ..Default::default()
    }
}

fn unstage(id: &str, staging: &Path) -> csi::NodeUnstageVolumeRequest {
    csi::NodeUnstageVolumeRequest {
        volume_id: id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
    }
}

fn publish(
    id: &str,
    staging: &Path,
    target: &Path,
    readonly: bool,
) -> csi::NodePublishVolumeRequest {
    csi::NodePublishVolumeRequest {
        volume_id: id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        target_path: target.to_string_lossy().into_owned(),
        readonly,
        ..Default::default()
    }
}

fn unpublish(id: &str, target: &Path) -> csi::NodeUnpublishVolumeRequest {
    csi::NodeUnpublishVolumeRequest {
        volume_id: id.into(),
        target_path: target.to_string_lossy().into_owned(),
    }
}

#[tokio::test]
async fn full_lifecycle_mounts_for_real() {
    if !require_root("full_lifecycle_mounts_for_real") {
        return;
    }
    let scratch = Scratch::new();
    let plugin = CsiTestPlugin::start(scratch.path()).expect("start plugin");
    let mut c = clients(&plugin).await;

    let info = c
        .identity
        .get_plugin_info(csi::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.name.as_str(), info.vendor_version.as_str()),
        ("test.csi.dvdi", "0.1.0")
    );

    let volume = c
        .controller
        .create_volume(create("data", 1024))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(volume.volume_id, "vol-data");
    assert_eq!(volume.capacity_bytes, 1024);
    assert_eq!(
        volume.volume_context.get("name").map(String::as_str),
        Some("data")
    );
    let again = c
        .controller
        .create_volume(create("data", 1024))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(again.volume_id, "vol-data");
    let err = c
        .controller
        .create_volume(create("data", 2048))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(plugin.volumes(), ["vol-data"]);
    let dir = plugin.volume_dir("vol-data");
    assert!(dir.is_dir());

    let staging = scratch.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let err = c
        .node
        .node_stage_volume(stage("vol-data", &staging))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "stage before controller publish: {err}"
    );
    let err = c
        .node
        .node_stage_volume(stage("vol-none", &staging))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let published = c
        .controller
        .controller_publish_volume(controller_publish("vol-data", "node-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        published.publish_context.get("backing").map(PathBuf::from),
        Some(dir.clone())
    );
    let err = c
        .controller
        .controller_publish_volume(controller_publish("vol-none", "node-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        plugin.controller_published(),
        [("vol-data".to_string(), "node-1".to_string())]
    );

    let err = c
        .node
        .node_stage_volume(stage("vol-data", &scratch.path().join("absent")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    c.node
        .node_stage_volume(stage("vol-data", &staging))
        .await
        .unwrap();
    c.node
        .node_stage_volume(stage("vol-data", &staging))
        .await
        .expect("stage is idempotent");
    assert!(is_mounted(&staging));
    assert_eq!(plugin.staged(), [("vol-data".to_string(), staging.clone())]);

    let target = scratch.path().join("target");
    let err = c
        .node
        .node_publish_volume(publish(
            "vol-data",
            &scratch.path().join("other"),
            &target,
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "publish from an unstaged path: {err}"
    );
    let err = c
        .node
        .node_publish_volume(publish(
            "vol-data",
            &staging,
            &scratch.path().join("no/parent"),
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    c.node
        .node_publish_volume(publish("vol-data", &staging, &target, false))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish("vol-data", &staging, &target, false))
        .await
        .expect("publish is idempotent");
    assert!(is_mounted(&target));
    std::fs::write(target.join("hello"), "through the target").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("hello")).unwrap(),
        "through the target"
    );

    let readonly = scratch.path().join("readonly");
    c.node
        .node_publish_volume(publish("vol-data", &staging, &readonly, true))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(readonly.join("hello")).unwrap(),
        "through the target"
    );
    let err = std::fs::write(readonly.join("nope"), "x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EROFS),
        "write through a read-only publish: {err}"
    );
    assert_eq!(plugin.published().len(), 2);

    let err = c
        .controller
        .delete_volume(csi::DeleteVolumeRequest {
            volume_id: "vol-data".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = c
        .node
        .node_unstage_volume(unstage("vol-data", &staging))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "unstage while published: {err}"
    );

    for t in [&target, &readonly] {
        c.node
            .node_unpublish_volume(unpublish("vol-data", t))
            .await
            .unwrap();
        assert!(!is_mounted(t) && !t.exists(), "{} still there", t.display());
    }
    c.node
        .node_unpublish_volume(unpublish("vol-data", &target))
        .await
        .expect("unpublish is idempotent");
    c.node
        .node_unstage_volume(unstage("vol-data", &staging))
        .await
        .unwrap();
    assert!(!is_mounted(&staging));
    assert!(staging.is_dir(), "the staging dir belongs to the CO");
    c.node
        .node_unstage_volume(unstage("vol-data", &staging))
        .await
        .expect("unstage is idempotent");
    assert!(plugin.staged().is_empty() && plugin.published().is_empty());

    let listed = c
        .controller
        .list_volumes(csi::ListVolumesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.entries.len(), 1);

    let unpublish_all = csi::ControllerUnpublishVolumeRequest {
        volume_id: "vol-data".into(),
        node_id: "node-1".into(),
        ..Default::default()
    };
    c.controller
        .controller_unpublish_volume(unpublish_all.clone())
        .await
        .unwrap();
    c.controller
        .controller_unpublish_volume(unpublish_all)
        .await
        .expect("controller unpublish is idempotent");
    let delete = csi::DeleteVolumeRequest {
        volume_id: "vol-data".into(),
        ..Default::default()
    };
    c.controller.delete_volume(delete.clone()).await.unwrap();
    assert!(!dir.exists());
    c.controller
        .delete_volume(delete)
        .await
        .expect("delete is idempotent");
    assert!(plugin.volumes().is_empty());

    let err = c
        .node
        .node_get_volume_stats(csi::NodeGetVolumeStatsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert_eq!(plugin.count("NodePublishVolume"), 5);
}

#[tokio::test]
async fn a_restart_between_calls_keeps_the_state() {
    if !require_root("a_restart_between_calls_keeps_the_state") {
        return;
    }
    let scratch = Scratch::new();
    let mut plugin = CsiTestPlugin::start(scratch.path()).expect("start plugin");
    let staging = scratch.path().join("staging");
    let target = scratch.path().join("target");
    std::fs::create_dir(&staging).unwrap();

    let mut c = clients(&plugin).await;
    c.controller.create_volume(create("kept", 0)).await.unwrap();
    plugin.restart().unwrap();
    let mut c = clients(&plugin).await;
    c.controller
        .controller_publish_volume(controller_publish("vol-kept", "node-1"))
        .await
        .unwrap();
    plugin.restart().unwrap();
    let mut c = clients(&plugin).await;
    c.node
        .node_stage_volume(stage("vol-kept", &staging))
        .await
        .unwrap();
    plugin.restart().unwrap();
    let mut c = clients(&plugin).await;
    c.node
        .node_publish_volume(publish("vol-kept", &staging, &target, false))
        .await
        .unwrap();
    assert!(is_mounted(&target));
    plugin.restart().unwrap();
    let mut c = clients(&plugin).await;
    let err = c
        .node
        .node_unstage_volume(unstage("vol-kept", &staging))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the restarted plugin knows it is published"
    );
    c.node
        .node_unpublish_volume(unpublish("vol-kept", &target))
        .await
        .unwrap();
    c.node
        .node_unstage_volume(unstage("vol-kept", &staging))
        .await
        .unwrap();
    assert!(!is_mounted(&target) && !is_mounted(&staging));
    assert_eq!(plugin.volumes(), ["vol-kept"]);
}

#[tokio::test]
async fn a_node_only_plugin_publishes_a_preprovisioned_volume() {
    if !require_root("a_node_only_plugin_publishes_a_preprovisioned_volume") {
        return;
    }
    let scratch = Scratch::new();
    let options = CsiPluginOptions {
        node_id: Some("n7".into()),
        controller: false,
        stage: false,
        ..Default::default()
    };
    let plugin = CsiTestPlugin::start_with(scratch.path(), options).expect("start plugin");
    plugin.add_volume("vol-pre").unwrap();
    std::fs::write(plugin.volume_dir("vol-pre").join("seed"), "pre").unwrap();
    let mut c = clients(&plugin).await;

    let caps = c
        .identity
        .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        caps.capabilities.is_empty(),
        "no CONTROLLER_SERVICE: {caps:?}"
    );
    let caps = c
        .node
        .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        caps.capabilities.is_empty(),
        "no STAGE_UNSTAGE_VOLUME: {caps:?}"
    );
    let info = c
        .node
        .node_get_info(csi::NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.node_id, "n7");
    let err = c
        .controller
        .create_volume(create("x", 0))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unimplemented,
        "no Controller service: {err}"
    );

    let target = scratch.path().join("target");
    c.node
        .node_publish_volume(publish("vol-pre", Path::new(""), &target, false))
        .await
        .unwrap();
    assert!(is_mounted(&target));
    assert_eq!(std::fs::read_to_string(target.join("seed")).unwrap(), "pre");
    c.node
        .node_unpublish_volume(unpublish("vol-pre", &target))
        .await
        .unwrap();
    assert!(!is_mounted(&target));
}

#[tokio::test]
async fn the_controller_can_have_its_own_socket() {
    let scratch = Scratch::new();
    let options = CsiPluginOptions {
        separate_controller_socket: true,
        controller_publish: false,
        ..Default::default()
    };
    let plugin = CsiTestPlugin::start_with(scratch.path(), options).expect("start plugin");
    assert_ne!(plugin.socket(), plugin.controller_socket());
    let mut c = clients(&plugin).await;
    c.controller
        .create_volume(create("apart", 0))
        .await
        .unwrap();
    let caps = c
        .controller
        .controller_get_capabilities(csi::ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        caps.capabilities.len(),
        2,
        "CREATE_DELETE_VOLUME and LIST_VOLUMES: {caps:?}"
    );

    let mut controller_identity = IdentityClient::new(channel(plugin.controller_socket()).await);
    controller_identity
        .probe(csi::ProbeRequest {})
        .await
        .unwrap();
    let mut node_on_controller = NodeClient::new(channel(plugin.controller_socket()).await);
    let err = node_on_controller
        .node_get_info(csi::NodeGetInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let mut controller_on_node = ControllerClient::new(channel(plugin.socket()).await);
    let err = controller_on_node
        .list_volumes(csi::ListVolumesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[tokio::test]
async fn every_fault_kind_is_observable() {
    let scratch = Scratch::new();
    let mut plugin = CsiTestPlugin::start(scratch.path()).expect("start plugin");
    let mut c = clients(&plugin).await;

    // hang: the call never answers, while others are still served.
    plugin.set_fault("Probe", CsiFault::Hang, Some(1));
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        c.identity.clone().probe(csi::ProbeRequest {}),
    )
    .await;
    assert!(hung.is_err(), "a hung Probe answered: {hung:?}");
    c.identity
        .get_plugin_info(csi::GetPluginInfoRequest {})
        .await
        .expect("served during a hang");
    c.identity
        .probe(csi::ProbeRequest {})
        .await
        .expect("the hang was for one call");

    // error: the status code and message, then normal service.
    plugin.set_fault(
        "CreateVolume",
        CsiFault::Error {
            code: "RESOURCE_EXHAUSTED".into(),
            message: "disk full".into(),
        },
        Some(1),
    );
    let err = c
        .controller
        .create_volume(create("f", 0))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::ResourceExhausted, "disk full")
    );
    c.controller.create_volume(create("f", 0)).await.unwrap();
    assert_eq!(
        plugin.count("CreateVolume"),
        2,
        "faulted calls are logged too"
    );

    // delay: answered, late.
    plugin.set_fault(
        "NodeGetInfo",
        CsiFault::Delay(Duration::from_millis(300)),
        None,
    );
    let started = Instant::now();
    c.node
        .node_get_info(csi::NodeGetInfoRequest {})
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    plugin.clear_faults();

    // exit: no answer, the process is gone, and ensure_running brings it back.
    plugin.set_fault("NodeGetCapabilities", CsiFault::Exit, Some(1));
    let err = c
        .node
        .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
        .await
        .unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    let deadline = Instant::now() + Duration::from_secs(5);
    while plugin.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !plugin.is_running(),
        "the exit fault left the plugin running"
    );
    plugin.ensure_running().unwrap();
    let mut c = clients(&plugin).await;
    c.node
        .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
        .await
        .expect("the exit was for one call");
    assert_eq!(plugin.volumes(), ["vol-f"]);
    plugin.ensure_running().expect("running: nothing to do");

    // a bad fault names what is wrong.
    plugin.set_fault(
        "Probe",
        CsiFault::Error {
            code: "OOPS".into(),
            message: String::new(),
        },
        None,
    );
    let err = c.identity.probe(csi::ProbeRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("OOPS"), "{err}");
    assert_eq!(plugin.calls().last().map(String::as_str), Some("Probe"));
}
