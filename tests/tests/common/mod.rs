//! What the black-box tests of `dvdcli exec` share: a temp world (a sandbox that is the
//! command's cwd, a checkpoint dir, a `local` root, a plugin dir) and the real binary run in
//! it with only its variables. Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dvdi_testkit::env::{command, workspace_bin};

pub mod csi;

/// The `es-data` volume of the Elasticsearch node: a 32 MiB `local` block volume at `data`.
pub const DATA: [(&str, &str); 4] = [
    ("DVDI_VOLUME_NAME", "es-data"),
    ("DVDI_VOLUME_DRIVER", "local"),
    ("DVDI_VOLUME_OPTS", "size=32M"),
    ("DVDI_VOLUME_CONTAINERPATH", "data"),
];

/// A sandbox directory (the cwd of exec), a checkpoint dir and a local-driver root; whatever
/// is still mounted below it is lazily unmounted when it is dropped.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(env.sandbox()).unwrap();
        env
    }

    pub fn sandbox(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    pub fn ckpt(&self) -> PathBuf {
        self.dir.path().join("ckpt")
    }

    pub fn volumes(&self) -> PathBuf {
        self.dir.path().join("volumes")
    }

    /// This world's `DVDI_*` variables.
    pub fn vars(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("DVDI_CHECKPOINT_DIR", self.ckpt()),
            ("DVDI_LOCAL_ROOT", self.volumes()),
            ("DVDI_PLUGIN_DIRS", self.dir.path().join("plugins")),
            ("DVDI_TIMEOUT", "20".into()),
        ]
    }

    /// The real `dvdcli` with `args`, in the sandbox, with this world's variables and `vars`.
    pub fn dvdcli(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut cmd = command(&workspace_bin("dvdcli"));
        cmd.args(args).current_dir(self.sandbox());
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.dvdcli(args, vars).output().unwrap()
    }

    /// `dvdcli exec -- sh -c script` with `vars`.
    pub fn exec(&self, vars: &[(&str, &str)], script: &str) -> Output {
        self.run(&["exec", "--", "sh", "-c", script], vars)
    }

    /// Mount points under this world (none may be left).
    pub fn mounts(&self) -> Vec<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        dvdi::mountinfo::parse(&text)
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|m| m.starts_with(self.dir.path()))
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for m in self.mounts().into_iter().rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits (up to 20 s) for `path` to appear.
pub fn wait_for(path: &Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}
