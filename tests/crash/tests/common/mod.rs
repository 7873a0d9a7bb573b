//! What the crash matrix and the I/O fault matrix share: a test world (temp dirs, a Docker
//! plugin process recording its calls, a CSI test plugin keeping its state in files) and the
//! harness run in it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dvdi_testkit::csi_plugin::CsiTestPlugin;
use dvdi_testkit::env::{command, spawn_plugin_process, workspace_bin};
use serde_json::Value;

const HARNESS: &str = env!("CARGO_BIN_EXE_dvdi-crash-harness");

/// One test world: temp dirs, a Docker plugin process recording its calls, and a CSI test
/// plugin (`csi-plugin/`) configured as driver [`dvdi_crash::CSI_DRIVER`] in `csi.d/`, its
/// host side (staging dirs, publish targets, the driver's records) under `csi-root/`.
pub struct World {
    tmp: tempfile::TempDir,
    plugin: Option<Child>,
    csi: Option<CsiTestPlugin>,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("dvdi-crash-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
        let mut world = World {
            tmp,
            plugin: None,
            csi: None,
        };
        world.start_plugin();
        world.start_csi_plugin();
        world
    }

    /// Starts the CSI test plugin (from the root workspace's target dir, as the Docker test
    /// plugin is) and writes its configuration file: one socket for node and controller.
    fn start_csi_plugin(&mut self) {
        let plugin = CsiTestPlugin::start(&self.path("csi-plugin")).unwrap();
        let endpoint = format!("unix://{}", plugin.socket().display());
        let config = serde_json::json!({
            "node_endpoint": endpoint,
            "controller_endpoint": endpoint,
            "root": self.path("csi-root"),
            "plugin_name": "test.csi.dvdi",
        });
        std::fs::create_dir_all(self.path("csi.d")).unwrap();
        std::fs::write(
            self.path("csi.d")
                .join(format!("{}.json", dvdi_crash::CSI_DRIVER)),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        self.csi = Some(plugin);
    }

    /// The CSI test plugin.
    pub fn csi(&self) -> &CsiTestPlugin {
        self.csi.as_ref().expect("the world's CSI plugin")
    }

    /// Where the CSI driver publishes the scenario's CSI volume on this host.
    pub fn csi_target(&self) -> PathBuf {
        self.path("csi-root")
            .join(dvdi_crash::CSI_VOLUME)
            .join("target")
    }

    /// The CSI driver's `users.json` of the scenario's CSI volume: (mount ids, published).
    pub fn csi_users(&self) -> (Vec<String>, bool) {
        let path = self
            .path("csi-root")
            .join(dvdi_crash::CSI_VOLUME)
            .join("users.json");
        let Ok(bytes) = std::fs::read(&path) else {
            return (Vec::new(), false);
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let users = v["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (users, v["published"].as_bool().unwrap_or(false))
    }

    /// What the CSI plugin still holds (staged, published, controller-published), as text;
    /// empty when it holds nothing.
    pub fn csi_leftovers(&self) -> String {
        let csi = self.csi();
        let (staged, published, attached) =
            (csi.staged(), csi.published(), csi.controller_published());
        if staged.is_empty() && published.is_empty() && attached.is_empty() {
            String::new()
        } else {
            format!("staged {staged:?}, published {published:?}, controller-published {attached:?}")
        }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.tmp.path().join(sub)
    }

    pub fn start_plugin(&mut self) {
        let child = spawn_plugin_process(
            &self
                .path("plugins")
                .join(format!("{}.sock", dvdi_crash::PLUGIN_DRIVER)),
            &self.path("plugin-mounts"),
            &self.path("plugin-record.jsonl"),
        );
        self.plugin = Some(child);
    }

    pub fn harness(&self, step: &[&str], fault: Option<&str>, trace: Option<&Path>) -> Command {
        let mut cmd = command(Path::new(HARNESS));
        cmd.arg("--checkpoint")
            .arg(self.path("checkpoint"))
            .arg("--local-root")
            .arg(self.path("volumes"))
            .arg("--plugin-dir")
            .arg(self.path("plugins"))
            .arg("--sandboxes")
            .arg(self.path("sandboxes"))
            .arg("--csi-config-dir")
            .arg(self.path("csi.d"))
            .arg("--csi-client")
            .arg(workspace_bin("dvdi-csi"))
            .args(step)
            .stdin(Stdio::null());
        if let Some(point) = fault {
            cmd.env("DVDI_FAULT_POINT", point);
        }
        if let Some(trace) = trace {
            cmd.env("DVDI_FAULT_TRACE", trace);
        }
        cmd
    }

    /// Runs a step that must succeed; its `ok` value.
    pub fn run_ok(&self, step: &[&str]) -> Result<Value, String> {
        let out = self.harness(step, None, None).output().unwrap();
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.success() {
            Ok(value["ok"].clone())
        } else {
            Err(format!(
                "`{}` failed ({}): {}",
                step.join(" "),
                out.status,
                value["error"].as_str().unwrap_or("")
            ))
        }
    }

    pub fn inspect(&self) -> Value {
        self.run_ok(&["inspect"]).unwrap()
    }

    /// Mount points under this world's directory.
    pub fn mounts(&self) -> Vec<PathBuf> {
        dvdi::mountinfo::read_self()
            .unwrap()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|m| m.starts_with(self.tmp.path()))
            .collect()
    }

    /// Loop devices whose backing file is under this world's directory.
    pub fn loops(&self) -> Vec<String> {
        dvdi_testkit::loops::backed_by(|file| file.starts_with(self.tmp.path()))
    }

    /// [`World::loops`], once the detaches the kernel deferred are done.
    pub fn loops_settled(&self) -> Vec<String> {
        dvdi_testkit::loops::settled(|| self.loops())
    }

    /// (Mount ids, Unmount ids) from the plugin's record file, in order.
    pub fn plugin_calls(&self) -> (Vec<String>, Vec<String>) {
        let text = std::fs::read_to_string(self.path("plugin-record.jsonl")).unwrap_or_default();
        let (mut mounts, mut unmounts) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let call: Value = serde_json::from_str(line).unwrap();
            let id = call["body"]["ID"].as_str().unwrap_or("").to_owned();
            match call["endpoint"].as_str() {
                Some("VolumeDriver.Mount") => mounts.push(id),
                Some("VolumeDriver.Unmount") => unmounts.push(id),
                _ => {}
            }
        }
        (mounts, unmounts)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut child) = self.plugin.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
        drop(self.csi.take());
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        for dev in self.loops() {
            let _ = Command::new("losetup")
                .arg("-d")
                .arg(format!("/dev/{dev}"))
                .status();
        }
    }
}

/// One finished case of a matrix, for [`print_grid`]: the index of its step, its point's
/// name (without `@N`), and whether it passed.
pub type Tally<'a> = (usize, &'a str, bool);

/// Prints a matrix's grid: a row per point, a column per step, each cell the number of cases
/// (`{n} {unit}`) and how many failed, or "not reached" where the step never passes the point.
/// Returns the points no case reached.
pub fn print_grid<'a>(
    corner: &str,
    points: &[&'a str],
    steps: &[String],
    cases: &[Tally<'_>],
    unit: &str,
) -> Vec<&'a str> {
    println!("\n| {corner} | {} |", steps.join(" | "));
    println!("|---|{}", "---|".repeat(steps.len()));
    let mut unreached = Vec::new();
    for name in points {
        if !cases.iter().any(|(_, p, _)| p == name) {
            unreached.push(*name);
        }
        let cells: Vec<String> = (0..steps.len())
            .map(|step| {
                let mine = cases.iter().filter(|(s, p, _)| *s == step && p == name);
                let (n, bad) = mine.fold((0, 0), |(n, bad), (_, _, ok)| {
                    (n + 1, bad + usize::from(!ok))
                });
                match (n, bad) {
                    (0, _) => "not reached".to_owned(),
                    (n, 0) => format!("{n}{unit}, all pass"),
                    (n, bad) => format!("{n}{unit}, {bad} FAIL"),
                }
            })
            .collect();
        println!("| `{name}` | {} |", cells.join(" | "));
    }
    unreached
}

/// Runs the harness with `args` in `world` (whose earlier steps are done), tracing the points it
/// passes into the file named by `trace_var` (`DVDI_FAULT_TRACE` or `DVDI_FAULT_IO_TRACE`), and
/// returns them numbered by pass (`NAME@N`). The step must succeed, or fail when `fails` (a
/// step that fails by design).
pub fn traced_points(world: &World, args: &[&str], trace_var: &str, fails: bool) -> Vec<String> {
    let trace = world.path("trace");
    let out = world
        .harness(args, None, None)
        .env(trace_var, &trace)
        .output()
        .unwrap();
    assert_eq!(
        out.status.success(),
        !fails,
        "{} without fault: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    text.lines()
        .map(|name| {
            let n = seen.entry(name).or_insert(0);
            *n += 1;
            format!("{name}@{n}")
        })
        .collect()
}

/// A finished case of a matrix: its index, its outcome, how long it took.
pub type Row = (usize, Result<String, String>, std::time::Duration);

/// Runs `case` on every element of `cases`, four at a time (each case has a world of its own),
/// and returns the rows in the order of `cases`.
pub fn run_cases<C: Sync>(
    cases: &[C],
    case: impl Fn(&C) -> Result<String, String> + Sync,
) -> Vec<Row> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rows = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(c) = cases.get(i) else {
                    break;
                };
                let t = std::time::Instant::now();
                let outcome = case(c);
                rows.lock().unwrap().push((i, outcome, t.elapsed()));
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|r: &Row| r.0);
    rows
}

/// A running container holds the scenario's CSI volume under ledger mount id `id`: the
/// driver's users record still has `id` and says published, the plugin still has the target
/// published and it is mounted, and no `NodeUnpublishVolume` was sent since the plugin had
/// received `calls_before` calls (so it was never unpublished, even for a moment).
pub fn check_csi_held(world: &World, id: &str, calls_before: usize) -> Result<(), String> {
    let target = world.csi_target();
    let (users, published) = world.csi_users();
    if !published || !users.iter().any(|u| u == id) {
        return Err(format!(
            "csi users record lost mount id {id}: users {users:?}, published {published}"
        ));
    }
    if !world.csi().published().iter().any(|(_, t)| *t == target) {
        return Err(format!(
            "the CSI plugin no longer has {} published",
            target.display()
        ));
    }
    if !world.mounts().contains(&target) {
        return Err(format!("{} is not mounted", target.display()));
    }
    let calls = world.csi().calls();
    if calls
        .iter()
        .skip(calls_before)
        .any(|c| c == "NodeUnpublishVolume")
    {
        return Err("NodeUnpublishVolume sent while a holder ran".into());
    }
    Ok(())
}

/// At the end of a case: the CSI plugin holds nothing (nothing staged, published or
/// controller-published) and the driver's users record is empty and unpublished.
pub fn check_csi_clean(world: &World) -> Result<(), String> {
    let left = world.csi_leftovers();
    if !left.is_empty() {
        return Err(format!("the CSI plugin still holds: {left}"));
    }
    let (users, published) = world.csi_users();
    if !users.is_empty() || published {
        return Err(format!(
            "csi users record not clear at the end: users {users:?}, published {published}"
        ));
    }
    Ok(())
}
