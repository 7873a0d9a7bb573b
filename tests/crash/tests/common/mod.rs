//! What the crash matrix and the I/O fault matrix share: a test world (temp dirs, a plugin
//! process recording its calls) and the harness run in it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dvdi_testkit::env::{command, spawn_plugin_process};
use serde_json::Value;

const HARNESS: &str = env!("CARGO_BIN_EXE_dvdi-crash-harness");

/// One test world: temp dirs, a plugin process recording its calls.
pub struct World {
    tmp: tempfile::TempDir,
    plugin: Option<Child>,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("dvdi-crash-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
        let mut world = World { tmp, plugin: None };
        world.start_plugin();
        world
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
