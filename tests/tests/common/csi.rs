//! A world with the CSI test plugin: the plugin process, the operator's CSI file for it (one
//! per agent, each agent with its own `root`), and the settings or `DVDI_` variables that make
//! the library use it. Whatever is left mounted under the world goes when it is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dvdi::{Settings, Timeouts};
use dvdi_testkit::csi_plugin::{CsiPluginOptions, CsiTestPlugin};
use dvdi_testkit::env::workspace_bin;

/// The driver name the operator gives the test plugin.
pub const DRIVER: &str = "csitest";

pub struct CsiWorld {
    pub tmp: tempfile::TempDir,
    pub plugin: CsiTestPlugin,
    /// Whether the CSI file names the controller endpoint.
    pub controller: bool,
}

impl CsiWorld {
    pub fn new() -> CsiWorld {
        Self::with(CsiPluginOptions::default(), true)
    }

    pub fn with(options: CsiPluginOptions, controller: bool) -> CsiWorld {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = CsiTestPlugin::start_with(&tmp.path().join("plugin"), options).unwrap();
        let world = CsiWorld {
            tmp,
            plugin,
            controller,
        };
        for agent in ["a", "b"] {
            world.write_config(agent, "");
        }
        world
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.tmp.path().join(sub)
    }

    /// Agent `agent`'s CSI directory.
    pub fn config_dir(&self, agent: &str) -> PathBuf {
        self.path(&format!("agent-{agent}/csi.d"))
    }

    /// Agent `agent`'s root for staging and publish targets.
    pub fn root(&self, agent: &str) -> PathBuf {
        self.path(&format!("agent-{agent}/csi"))
    }

    /// Writes agent `agent`'s file for [`DRIVER`], with `extra` JSON members (`,"k":v`).
    pub fn write_config(&self, agent: &str, extra: &str) {
        self.plugin.write_operator_file(
            &self.config_dir(agent).join(format!("{DRIVER}.json")),
            &self.root(agent),
            self.controller,
            extra,
        );
    }

    /// Agent `agent`'s settings: its CSI directory, the `dvdi-csi` program, every deadline
    /// `deadline`, no Docker plugin directory, its own `local` root.
    pub fn settings(&self, agent: &str, deadline: Duration) -> Settings {
        let mut settings = Settings::default();
        settings.client.plugin_dirs = vec![self.path("no-plugins")];
        settings.client.timeouts = Timeouts::uniform(deadline);
        settings.local_root = self.path(&format!("agent-{agent}/local"));
        settings.csi_config_dir = self.config_dir(agent);
        settings.csi_client = workspace_bin("dvdi-csi");
        settings
    }

    /// The same as `DVDI_` variables, for `dvdcli`.
    pub fn vars(&self, agent: &str) -> Vec<(String, String)> {
        let s = |p: &Path| p.display().to_string();
        vec![
            ("DVDI_CSI_CONFIG_DIR".into(), s(&self.config_dir(agent))),
            ("DVDI_CSI_CLIENT".into(), s(&workspace_bin("dvdi-csi"))),
            ("DVDI_PLUGIN_DIRS".into(), s(&self.path("no-plugins"))),
            (
                "DVDI_LOCAL_ROOT".into(),
                s(&self.path(&format!("agent-{agent}/local"))),
            ),
            (
                "DVDI_CHECKPOINT_DIR".into(),
                s(&self.path(&format!("agent-{agent}/checkpoint"))),
            ),
            ("DVDI_TIMEOUT".into(), "20".into()),
        ]
    }

    /// Mount points under this world.
    pub fn mounts(&self) -> Vec<PathBuf> {
        dvdi_testkit::buttervolume::mounts_under(self.tmp.path())
    }

    /// What the plugin and the host still have of any volume: staged, published,
    /// controller-published, mounted. Empty when everything was released.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        left.extend(
            self.plugin
                .staged()
                .into_iter()
                .map(|(v, p)| format!("staged {v} at {}", p.display())),
        );
        left.extend(
            self.plugin
                .published()
                .into_iter()
                .map(|(v, p)| format!("published {v} at {}", p.display())),
        );
        left.extend(
            self.plugin
                .controller_published()
                .into_iter()
                .map(|(v, n)| format!("{v} controller-published to {n}")),
        );
        left.extend(
            self.mounts()
                .into_iter()
                .map(|m| format!("mounted {}", m.display())),
        );
        left
    }
}

impl Drop for CsiWorld {
    fn drop(&mut self) {
        let _ = dvdi_testkit::buttervolume::unmount_all_under(self.tmp.path());
    }
}
