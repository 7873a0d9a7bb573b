//! The isolator against a real plugin over a Unix socket: the plugin is discovered and
//! activated once per process, not once per operation, and found and activated again after a
//! call fails without the plugin's answer.

use std::time::Duration;

use dvdi::{
    ClientConfig, ContainerConfig, ContainerId, DriverName, Isolator, IsolatorConfig, Settings,
    Timeouts,
};
use dvdi_testkit::plugin::{Fault, TestPlugin};

struct World {
    _dir: tempfile::TempDir,
    sandbox: std::path::PathBuf,
    plugin: TestPlugin,
    iso: Isolator,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let plugin = TestPlugin::start(&plugins.join("tp.sock"), &dir.path().join("mnt")).unwrap();
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    let settings = Settings {
        client: ClientConfig {
            plugin_dirs: vec![plugins],
            timeouts: Timeouts::uniform(Duration::from_secs(5)),
            ..ClientConfig::default()
        },
        local_root: dir.path().join("local"),
        ..Settings::default()
    };
    let iso = Isolator::from_config(IsolatorConfig {
        checkpoint_dir: dir.path().join("checkpoint"),
        default_driver: DriverName::new("tp").unwrap(),
        settings,
        ..IsolatorConfig::default()
    })
    .unwrap();
    World {
        _dir: dir,
        sandbox,
        plugin,
        iso,
    }
}

impl World {
    fn prepare(&self, id: &str, volume: &str) -> Result<(), dvdi::IsolatorError> {
        let config = ContainerConfig {
            env: vec![("DVDI_VOLUME_NAME".into(), volume.into())],
            sandbox: self.sandbox.clone(),
            ..ContainerConfig::default()
        };
        self.iso
            .prepare(&ContainerId::new(id).unwrap(), &config)
            .map(drop)
    }

    fn cleanup(&self, id: &str) {
        self.iso.cleanup(&ContainerId::new(id).unwrap()).unwrap();
    }
}

#[test]
fn the_plugin_is_activated_once_for_many_operations() {
    let w = world();
    for i in 0..3 {
        w.prepare(&format!("c{i}"), &format!("v{i}")).unwrap();
    }
    for i in 0..3 {
        w.cleanup(&format!("c{i}"));
    }
    assert_eq!(w.plugin.count("Plugin.Activate"), 1);
    // Every volume still gets its own Get, Create (missing), Mount and Unmount.
    assert_eq!(w.plugin.count("VolumeDriver.Get"), 3);
    assert_eq!(w.plugin.count("VolumeDriver.Create"), 3);
    assert_eq!(w.plugin.count("VolumeDriver.Mount"), 3);
    assert_eq!(w.plugin.count("VolumeDriver.Unmount"), 3);
}

#[test]
fn a_call_without_an_answer_makes_the_next_operation_activate_again() {
    let w = world();
    w.prepare("c1", "v1").unwrap();
    w.cleanup("c1");
    assert_eq!(w.plugin.count("Plugin.Activate"), 1);

    w.plugin
        .set_fault("VolumeDriver.Get", Fault::DropConnection, Some(1));
    assert!(w.prepare("c2", "v2").is_err());
    w.prepare("c3", "v3").unwrap();
    w.cleanup("c3");
    assert_eq!(w.plugin.count("Plugin.Activate"), 2);

    // A refusal is the plugin's answer: it is still there, no new handshake.
    w.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::ErrorIn200("no capacity".into()),
        Some(1),
    );
    assert!(w.prepare("c4", "v4").is_err());
    w.prepare("c5", "v5").unwrap();
    w.cleanup("c5");
    assert_eq!(w.plugin.count("Plugin.Activate"), 2);
}
