//! A CSI volume through the isolator's C ABI (prepare + cleanup of one container), next to what
//! it is made of: the `dvdi-csi` program run directly for one publish and one unpublish, and
//! the very CSI calls those make, sent in-process from a tonic client over one Unix-socket
//! connection. All against the CSI test plugin (`dvdi-csi-test-plugin`, release), whose
//! stage and publish are real bind mounts in the bench's private mount namespace.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bpfman_csi::v1 as csi;
use bpfman_csi::v1::controller_client::ControllerClient;
use bpfman_csi::v1::identity_client::IdentityClient;
use bpfman_csi::v1::node_client::NodeClient;
use dvdi::csi::wire::{self, Outcome, Reply};
use dvdi_testkit::buttervolume::unmount_all_under;
use dvdi_testkit::csi_plugin::CsiTestPlugin;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::stats::{median, median_f64, us, Row};
use crate::Env;
use dvdi_tests::capi::{container_config_json, container_id_json, Api};

/// The driver name: `<csi_config_dir>/csi-bench.json`.
const DRIVER: &str = "csi-bench";

/// The plugin's name, checked by `dvdi-csi` against `GetPluginInfo`.
const PLUGIN_NAME: &str = "test.csi.dvdi";

/// Everything the CSI rows share; its drop unmounts whatever the plugin left mounted.
struct Setup {
    dir: PathBuf,
    plugin: CsiTestPlugin,
    client: PathBuf,
    config_dir: PathBuf,
    root: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Err(e) = unmount_all_under(&self.dir) {
            eprintln!("dvdi-bench: unmounting under {}: {e}", self.dir.display());
        }
    }
}

fn setup(env: &Env) -> Result<Setup, String> {
    let dir = env.dir.join("csi");
    let plugin_dir = dir.join("plugin");
    let config_dir = dir.join("csi.d");
    let root = dir.join("root");
    for d in [&plugin_dir, &config_dir, &root] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let plugin = CsiTestPlugin::start(&plugin_dir)
        .map_err(|e| format!("cannot start the CSI test plugin: {e}"))?;
    let endpoint = format!("unix://{}", plugin.socket().display());
    let config = serde_json::json!({
        "node_endpoint": endpoint,
        "controller_endpoint": endpoint,
        "root": root,
        "plugin_name": PLUGIN_NAME,
    });
    let file = config_dir.join(format!("{DRIVER}.json"));
    std::fs::write(&file, config.to_string()).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Setup {
        dir,
        plugin,
        client: crate::sibling("dvdi-csi"),
        config_dir,
        root,
    })
}

/// The `dvdi-csi` program run once: `input` on its stdin, its reply parsed (process start to
/// exit).
fn run_client(client: &Path, input: &[u8]) -> (Duration, Reply) {
    let t = Instant::now();
    let mut child = Command::new(client)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run dvdi-csi");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write the request");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read the reply");
    let status = child.wait().expect("wait for dvdi-csi");
    let took = t.elapsed();
    assert!(status.success(), "dvdi-csi: {status}");
    let reply = serde_json::from_slice(&out).expect("dvdi-csi's reply");
    (took, reply)
}

fn request(setup: &Setup, op: wire::Op, volume: &str, volume_id: &str) -> wire::Request {
    let paths = setup.root.join(volume);
    let endpoint = wire::Endpoint::Unix(setup.plugin.socket().to_owned());
    wire::Request {
        version: wire::WIRE_VERSION,
        op,
        driver: DRIVER.into(),
        plugin_name: Some(PLUGIN_NAME.into()),
        node: endpoint.clone(),
        controller: Some(endpoint),
        volume: volume.into(),
        volume_id: Some(volume_id.into()),
        volume_context: Default::default(),
        capability: wire::Capability::default(),
        capacity: None,
        parameters: Default::default(),
        staging_path: Some(paths.join("staging")),
        target_path: Some(paths.join("target")),
        controller_secrets: Default::default(),
        node_secrets: Default::default(),
        deadlines: wire::Deadlines {
            connect_ms: 5_000,
            create_ms: 30_000,
            mount_ms: 30_000,
            other_ms: 5_000,
        },
        retries: dvdi::csi::RETRIES,
    }
}

/// The in-process reference: a tonic client on one kept connection to the plugin's socket.
struct Bare {
    identity: IdentityClient<Channel>,
    controller: ControllerClient<Channel>,
    node: NodeClient<Channel>,
}

async fn connect(socket: PathBuf) -> Channel {
    // The URI is required by the builder and unused: the connector dials the socket.
    Endpoint::try_from("http://[::]:50051")
        .expect("static endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            tokio::net::UnixStream::connect(socket.clone())
        }))
        .await
        .expect("connect to the CSI test plugin")
}

/// The capability `dvdi-csi` sends: a mounted filesystem, single-node writer.
fn capability() -> csi::VolumeCapability {
    use csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
    csi::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume::default())),
    }
}

impl Bare {
    /// The identity and capability calls `dvdi-csi` opens every operation with.
    async fn preamble(&mut self) {
        self.identity
            .get_plugin_info(csi::GetPluginInfoRequest {})
            .await
            .expect("GetPluginInfo");
        self.identity
            .probe(csi::ProbeRequest {})
            .await
            .expect("Probe");
        self.identity
            .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
            .await
            .expect("GetPluginCapabilities");
        self.controller
            .controller_get_capabilities(csi::ControllerGetCapabilitiesRequest {})
            .await
            .expect("ControllerGetCapabilities");
        self.node
            .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
            .await
            .expect("NodeGetCapabilities");
    }

    async fn node_id(&mut self) -> String {
        self.node
            .node_get_info(csi::NodeGetInfoRequest {})
            .await
            .expect("NodeGetInfo")
            .into_inner()
            .node_id
    }

    /// The calls of `dvdi-csi`'s publish, in its order.
    async fn publish(&mut self, id: &str, staging: &Path, target: &Path) {
        self.preamble().await;
        let node_id = self.node_id().await;
        let context = self
            .controller
            .controller_publish_volume(csi::ControllerPublishVolumeRequest {
                volume_id: id.into(),
                node_id,
                volume_capability: Some(capability()),
                ..Default::default()
            })
            .await
            .expect("ControllerPublishVolume")
            .into_inner()
            .publish_context;
        self.node
            .node_stage_volume(csi::NodeStageVolumeRequest {
                volume_id: id.into(),
                publish_context: context.clone(),
                staging_target_path: staging.to_string_lossy().into_owned(),
                volume_capability: Some(capability()),
                ..Default::default()
            })
            .await
            .expect("NodeStageVolume");
        self.node
            .node_publish_volume(csi::NodePublishVolumeRequest {
                volume_id: id.into(),
                publish_context: context,
                staging_target_path: staging.to_string_lossy().into_owned(),
                target_path: target.to_string_lossy().into_owned(),
                volume_capability: Some(capability()),
                ..Default::default()
            })
            .await
            .expect("NodePublishVolume");
    }

    /// The calls of `dvdi-csi`'s unpublish, in its order.
    async fn unpublish(&mut self, id: &str, staging: &Path, target: &Path) {
        self.preamble().await;
        self.node
            .node_unpublish_volume(csi::NodeUnpublishVolumeRequest {
                volume_id: id.into(),
                target_path: target.to_string_lossy().into_owned(),
            })
            .await
            .expect("NodeUnpublishVolume");
        self.node
            .node_unstage_volume(csi::NodeUnstageVolumeRequest {
                volume_id: id.into(),
                staging_target_path: staging.to_string_lossy().into_owned(),
            })
            .await
            .expect("NodeUnstageVolume");
        let node_id = self.node_id().await;
        self.controller
            .controller_unpublish_volume(csi::ControllerUnpublishVolumeRequest {
                volume_id: id.into(),
                node_id,
                ..Default::default()
            })
            .await
            .expect("ControllerUnpublishVolume");
    }
}

pub fn prepare_cleanup(env: &Env, api: &Api, runs: usize) -> Vec<Row> {
    let setup = match setup(env) {
        Ok(s) => s,
        Err(e) => return vec![Row::failed("CSI: setup", e)],
    };
    let handle = api
        .new_isolator(
            &serde_json::json!({
                "checkpoint_dir": env.checkpoint.join("csi"),
                "plugin_dirs": env.plugin_dir,
                "csi_config_dir": setup.config_dir,
                "csi_client": setup.client,
            })
            .to_string(),
        )
        .expect("isolator with a CSI plugin");
    let sandbox = setup.dir.join("sandbox");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    let config = container_config_json(
        &[
            ("DVDI_VOLUME_NAME", "csi-vol"),
            ("DVDI_VOLUME_DRIVER", DRIVER),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
        ],
        &sandbox,
    );
    let abi_once = |i: usize| {
        let id = container_id_json(&format!("csi-{i}"));
        let t = Instant::now();
        let launch = handle.prepare(&id, &config).expect("prepare (CSI)");
        handle.cleanup(&id).expect("cleanup (CSI)");
        let took = t.elapsed();
        assert!(launch.is_some_and(|l| l.contains("\"mounts\"")));
        took
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let channel = runtime.block_on(connect(setup.plugin.socket().to_owned()));
    let mut bare = Bare {
        identity: IdentityClient::new(channel.clone()),
        controller: ControllerClient::new(channel.clone()),
        node: NodeClient::new(channel),
    };
    // The references' own volume (made once, untimed), so that no figure sees another's state.
    let volume = "csi-ref";
    let volume_id = runtime
        .block_on(bare.controller.create_volume(csi::CreateVolumeRequest {
            name: volume.into(),
            volume_capabilities: vec![capability()],
            ..Default::default()
        }))
        .expect("CreateVolume")
        .into_inner()
        .volume
        .expect("a volume")
        .volume_id;
    let (staging, target) = (
        setup.root.join(volume).join("staging"),
        setup.root.join(volume).join("target"),
    );
    std::fs::create_dir_all(&staging).expect("staging dir");
    let encode = |op| serde_json::to_vec(&request(&setup, op, volume, &volume_id)).expect("json");
    let (publish, unpublish) = (encode(wire::Op::Publish), encode(wire::Op::Unpublish));
    let direct_once = || {
        let (p, reply_p) = run_client(&setup.client, &publish);
        assert!(matches!(reply_p.result, Outcome::Ok(_)), "{reply_p:?}");
        let (u, reply_u) = run_client(&setup.client, &unpublish);
        assert!(matches!(reply_u.result, Outcome::Ok(_)), "{reply_u:?}");
        (p + u, reply_p.calls.len() + reply_u.calls.len())
    };
    // A request the program refuses before any call: its start, its read of stdin, its reply.
    let starts_once = || {
        let (a, _) = run_client(&setup.client, b"{}");
        let (b, _) = run_client(&setup.client, b"{}");
        a + b
    };
    let mut bare_once = || {
        let t = Instant::now();
        runtime.block_on(async {
            bare.publish(&volume_id, &staging, &target).await;
            bare.unpublish(&volume_id, &staging, &target).await;
        });
        t.elapsed()
    };

    // Warm-up: the first prepare creates the volume (CreateVolume) and activates the driver.
    for i in 0..5 {
        abi_once(i);
        direct_once();
        bare_once();
        starts_once();
    }
    setup.plugin.clear_calls();
    let abi_calls_before = setup.plugin.count("NodePublishVolume");
    let (mut abi, mut direct, mut rpcs, mut starts) = (vec![], vec![], vec![], vec![]);
    let (mut abi_ratio, mut direct_ratio, mut abi_direct_ratio) = (vec![], vec![], vec![]);
    let mut calls_per_cycle = 0;
    for i in 0..runs {
        // Interleaved, so all four see the same machine load.
        let a = abi_once(1000 + i);
        let (d, calls) = direct_once();
        let b = bare_once();
        let s = starts_once();
        calls_per_cycle = calls;
        abi_ratio.push(a.as_secs_f64() / b.as_secs_f64());
        direct_ratio.push(d.as_secs_f64() / b.as_secs_f64());
        abi_direct_ratio.push(a.as_secs_f64() / d.as_secs_f64());
        abi.push(a);
        direct.push(d);
        rpcs.push(b);
        starts.push(s);
    }
    // Every cycle of each of the three really published: 3 NodePublishVolume per iteration.
    let published = setup.plugin.count("NodePublishVolume") - abi_calls_before;
    assert_eq!(
        published,
        3 * runs,
        "NodePublishVolume calls the plugin got"
    );
    drop(handle);

    let (abi, direct, rpcs, starts) = (
        median(&abi),
        median(&direct),
        median(&rpcs),
        median(&starts),
    );
    let gap = |a: Duration, b: Duration| us(a.saturating_sub(b));
    vec![
        Row::compared(
            "CSI volume: isolator prepare + cleanup, 1 volume, C ABI (ref: the same CSI calls, bare, in-process)",
            us(abi),
            us(rpcs),
            median_f64(&abi_ratio),
        ),
        Row::info(
            format!(
                "  └ reference = the {calls_per_cycle} CSI calls of one publish + one unpublish (identity and capabilities, NodeGetInfo, Controller/Node(Un)Publish, Node(Un)Stage) from a tonic client on one kept Unix-socket connection"
            ),
            String::new(),
            String::new(),
        ),
        Row::compared(
            "  … `dvdi-csi` run directly: one publish + one unpublish (2 processes, start to exit)",
            us(direct),
            us(rpcs),
            median_f64(&direct_ratio),
        ),
        Row::info(
            "  … `dvdi-csi` started twice, answering a refused request (no call, no runtime)",
            us(starts),
            String::new(),
        ),
        Row::compared(
            "  … the library's own share: the C ABI cycle against the 2 `dvdi-csi` runs it makes",
            us(abi),
            us(direct),
            median_f64(&abi_direct_ratio),
        ),
        Row::info(
            "  └ where the C ABI cycle goes (medians' differences): dvdi-csi's 2 processes over the bare calls | the library over dvdi-csi",
            gap(direct, rpcs),
            gap(abi, direct),
        ),
    ]
}
