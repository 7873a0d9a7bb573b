//! The crash matrix (root): for every fault point of the library (`dvdi::fault::POINTS`), at
//! every hit of it in every step of the scenario (`dvdi_crash`: prepare A, prepare B, cleanup A,
//! cleanup B, a recover of its own, and a prepare C that fails and rolls back), kill the harness there with SIGKILL, recover in a
//! fresh process, finish the scenario, and check the invariants of SPEC §5 against the mount
//! table, the ledger (`inspect`) and the plugin process's own record of its calls:
//!
//! - no leaked mount: at the end nothing is mounted under the test's directory, no loop device
//!   is left, the ledger is empty (no record, no failed unmount), and the CSI test plugin
//!   has nothing staged, published or controller-published;
//! - no lost reference: after recover, every running container that had been prepared holds
//!   each of its volumes in the ledger, mounted (the `local` one in the mount table, the plugin
//!   one with a Mount id the plugin never saw unmounted, the CSI one still published and
//!   mounted, its mount id in the driver's users record);
//! - no volume unmounted under a running container: that mount id is the one it had before
//!   the crash, and the CSI plugin got no `NodeUnpublishVolume` since before the crash;
//! - Mount/Unmount paired: every Mount id the plugin saw gets exactly one Unmount, and no
//!   Unmount names an id the plugin never mounted.
//!
//! Two recovery modes per kill: `kept` (the agent still knows every container it started,
//! the crashed one included) and `dropped` (the crashed step's container is unknown; for the
//! recover step: the agent knows nobody).
//!
//! Prints the table (`cargo nextest run -p dvdi-crash --no-capture`).

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use dvdi_testkit::env::require_root;
use serde_json::Value;

mod common;
use common::World;

/// One step of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Prepare(&'static str),
    Cleanup(&'static str),
    /// A recover whose agent knows the containers of the mode (A and B prepared before).
    Recover,
}

const STEPS: &[Step] = &[
    Step::Prepare("A"),
    Step::Prepare("B"),
    Step::Cleanup("A"),
    Step::Cleanup("B"),
    Step::Recover,
    Step::Prepare("C"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The agent still knows every container it started (the crashed step's one included).
    Kept,
    /// The crashed step's container is unknown to the agent (recover step: nobody is known).
    Dropped,
}

impl Step {
    fn name(self) -> String {
        match self {
            Step::Prepare(id) => format!("prepare {id}"),
            Step::Cleanup(id) => format!("cleanup {id}"),
            Step::Recover => "recover".into(),
        }
    }

    /// The steps run (without fault) before this one.
    fn setup(self) -> &'static [Step] {
        match self {
            Step::Prepare("A") | Step::Prepare("C") => &[],
            Step::Prepare(_) => &STEPS[..1],
            Step::Cleanup("A") | Step::Recover => &STEPS[..2],
            Step::Cleanup(_) => &STEPS[..3],
        }
    }

    /// Containers prepared and not cleaned up before this step.
    fn alive_before(self) -> BTreeSet<&'static str> {
        let mut alive = BTreeSet::new();
        for s in self.setup() {
            match s {
                Step::Prepare(id) => {
                    alive.insert(*id);
                }
                Step::Cleanup(id) => {
                    alive.remove(id);
                }
                Step::Recover => {}
            }
        }
        alive
    }

    /// The containers the agent knows after the crash, and which of them must keep their
    /// volumes (prepared before the crashed step and not being cleaned up by it).
    fn known(self, mode: Mode) -> (Vec<&'static str>, BTreeSet<&'static str>) {
        let alive = self.alive_before();
        let (known, must_hold): (BTreeSet<&str>, BTreeSet<&str>) = match (self, mode) {
            (Step::Prepare(x), Mode::Kept) => {
                let mut k = alive.clone();
                k.insert(x);
                (k, alive)
            }
            (Step::Prepare(_), Mode::Dropped) => (alive.clone(), alive),
            (Step::Cleanup(x), Mode::Kept) => {
                let mut h = alive.clone();
                h.remove(x);
                (alive, h)
            }
            (Step::Cleanup(x), Mode::Dropped) => {
                let mut k = alive;
                k.remove(x);
                (k.clone(), k)
            }
            (Step::Recover, Mode::Kept) => (["B"].into(), ["B"].into()),
            (Step::Recover, Mode::Dropped) => (BTreeSet::new(), BTreeSet::new()),
        };
        (known.into_iter().collect(), must_hold)
    }
}

fn step_args(step: Step, mode: Mode) -> Vec<&'static str> {
    match step {
        Step::Prepare(id) => vec!["prepare", id],
        Step::Cleanup(id) => vec!["cleanup", id],
        Step::Recover => {
            let mut args = vec!["recover"];
            args.extend(step.known(mode).0);
            args
        }
    }
}

/// The points (with hit numbers) `step` passes, found by running it with a trace.
fn points_of(step: Step, mode: Mode) -> Vec<String> {
    let world = World::new();
    for s in step.setup() {
        world.run_ok(&step_args(*s, mode)).unwrap();
    }
    // Prepare C fails by design (and rolls back); every other step succeeds.
    let fails = step == Step::Prepare("C");
    common::traced_points(&world, &step_args(step, mode), "DVDI_FAULT_TRACE", fails)
}

/// Kills `step` at `point`, recovers, finishes, checks. `Ok(details)` or `Err(what failed)`.
fn run_case(step: Step, mode: Mode, point: &str) -> Result<String, String> {
    let world = World::new();
    for s in step.setup() {
        world.run_ok(&step_args(*s, mode))?;
    }
    let before = world.inspect();
    let csi_calls_before = world.csi().calls().len();
    let status = world
        .harness(&step_args(step, mode), Some(point), None)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    if status.signal() != Some(libc_sigkill()) {
        return Err(format!("not killed at {point} ({status})"));
    }
    let uncertain = uncertain_mounts(&world);
    let (known, must_hold) = step.known(mode);
    let mut recover = vec!["recover"];
    recover.extend(&known);
    let report = world.run_ok(&recover)?;
    let mut details = format!(
        "recover: kept {}, cleaned {}, unmounted {}",
        report["kept_containers"], report["cleaned_containers"], report["unmounted_volumes"]
    );
    if report["failed_unmounts"].as_u64() != Some(0) {
        return Err(format!("recover reports failed unmounts: {report}"));
    }

    // No lost reference, nothing unmounted under a running container.
    let after = world.inspect();
    let (_, unmounted) = world.plugin_calls();
    let mounted_now = world.mounts();
    for c in &must_hold {
        for (driver, name) in dvdi_crash::volumes_of(c) {
            let find = |ins: &Value| {
                ins["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["driver"] == *driver && v["name"] == *name)
                    .cloned()
            };
            let Some(vol) = find(&after) else {
                return Err(format!(
                    "{driver}/{name} of running {c}: no record after recover"
                ));
            };
            if vol["state"] != "mounted"
                || !vol["holders"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from(*c))
            {
                return Err(format!("{driver}/{name} of running {c}: {vol}"));
            }
            let id = vol["mount_id"].as_str().unwrap_or("");
            let old = find(&before).map(|v| v["mount_id"].clone());
            if old.as_ref().and_then(Value::as_str) != Some(id) {
                return Err(format!(
                    "{driver}/{name} of running {c}: mount id changed ({old:?} → {id})"
                ));
            }
            if *driver == "local" {
                let mp = PathBuf::from(vol["mountpoint"].as_str().unwrap_or(""));
                if !mounted_now.contains(&mp) {
                    return Err(format!(
                        "local/{name} of running {c}: {} not mounted",
                        mp.display()
                    ));
                }
            } else if *driver == dvdi_crash::CSI_DRIVER {
                common::check_csi_held(&world, id, csi_calls_before)
                    .map_err(|e| format!("{driver}/{name} of running {c}: {e}"))?;
            } else if unmounted.iter().any(|u| u == id) {
                return Err(format!(
                    "{driver}/{name} unmounted (id {id}) under running {c}"
                ));
            }
        }
    }

    // Finish the scenario: the agent cleans up whatever it still knows.
    for c in &known {
        world.run_ok(&["cleanup", c])?;
    }
    let end = world.inspect();
    if !end["containers"].as_array().unwrap().is_empty()
        || !end["volumes"].as_array().unwrap().is_empty()
    {
        return Err(format!("ledger not empty at the end: {end}"));
    }
    let left = world.mounts();
    if !left.is_empty() {
        return Err(format!("leaked mounts: {left:?}"));
    }
    let loops = world.loops_settled();
    if !loops.is_empty() {
        let flags: Vec<String> = loops
            .iter()
            .map(|dev| {
                let autoclear = std::fs::read_to_string(format!("/sys/block/{dev}/loop/autoclear"))
                    .unwrap_or_default();
                format!("{dev} (autoclear {})", autoclear.trim())
            })
            .collect();
        return Err(format!("leaked loop devices: {flags:?}"));
    }
    common::check_csi_clean(&world)?;
    let (mounts, unmounts) = world.plugin_calls();
    let count = |id: &String| unmounts.iter().filter(|u| *u == id).count();
    for id in &mounts {
        let n = count(id);
        let allowed = if uncertain.unmounted.contains(id) {
            2
        } else {
            1
        };
        if n != 1 && n != allowed {
            return Err(format!("plugin mount id {id}: {n} Unmounts"));
        }
        if n == 2 {
            details.push_str("; 2nd Unmount of an id whose Unmount had returned before the kill");
        }
    }
    for id in unmounts.iter().filter(|u| !mounts.contains(u)) {
        if !uncertain.never_mounted.contains(id) || count(id) != 1 {
            return Err(format!("Unmount of id {id} the plugin never mounted"));
        }
        details.push_str("; 1 Unmount of an id whose Mount was never sent (recorded `mounting`)");
    }
    details.push_str(&format!(
        "; plugin Mount/Unmount {}/{}",
        mounts.len(),
        unmounts.len()
    ));
    Ok(details)
}

/// Plugin mount ids the kill left uncertain, as the checkpoint and the plugin's record show
/// them right after the kill. Recover cannot tell these cases from their twins (a Mount sent,
/// an Unmount not sent) without asking the driver, and the Docker protocol has no call that
/// lists mount ids, so it sends Unmount with the id — the safe direction (no leak).
#[derive(Default)]
struct Uncertain {
    /// Recorded `mounting`, and the plugin never received its Mount.
    never_mounted: BTreeSet<String>,
    /// Recorded `unmounting`, and the plugin had already received its Unmount.
    unmounted: BTreeSet<String>,
}

fn uncertain_mounts(world: &World) -> Uncertain {
    let (mounts, unmounts) = world.plugin_calls();
    let ledger = dvdi::ledger::Ledger::open(world.path("checkpoint")).unwrap();
    let mut out = Uncertain::default();
    for v in ledger.list_volumes().unwrap() {
        let Ok(record) = v.entry.record else { continue };
        let Some(mount) = record.mount else { continue };
        match mount.state {
            dvdi::ledger::MountState::Mounting if !mounts.contains(&mount.id) => {
                out.never_mounted.insert(mount.id);
            }
            dvdi::ledger::MountState::Unmounting if unmounts.contains(&mount.id) => {
                out.unmounted.insert(mount.id);
            }
            _ => {}
        }
    }
    out
}

fn libc_sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}

#[test]
fn crash_at_every_fault_point_is_recovered() {
    if !require_root("crash_at_every_fault_point_is_recovered") {
        return;
    }
    let started = Instant::now();
    let mut cases = Vec::new();
    for &step in STEPS {
        for mode in [Mode::Kept, Mode::Dropped] {
            for point in points_of(step, mode) {
                cases.push((step, mode, point));
            }
        }
    }
    let rows = common::run_cases(&cases, |(step, mode, point)| run_case(*step, *mode, point));

    println!("\n| fault point | step | agent knows | outcome | found |");
    println!("|---|---|---|---|---|");
    let mut failed = 0;
    for (i, outcome, took) in &rows {
        let (step, mode, point) = &cases[*i];
        let (verdict, found) = match outcome {
            Ok(d) => ("pass", d.clone()),
            Err(e) => {
                failed += 1;
                ("FAIL", e.clone())
            }
        };
        let knows = match step.known(*mode).0 {
            k if k.is_empty() => "nobody".to_owned(),
            k => k.join(","),
        };
        println!(
            "| `{point}` | {} | {knows} | {verdict} | {found} ({} ms) |",
            step.name(),
            took.as_millis()
        );
    }
    // Kills per point and step (both modes together).
    let tally: Vec<common::Tally> = rows
        .iter()
        .map(|(i, outcome, _)| {
            let (step, _, point) = &cases[*i];
            let column = STEPS.iter().position(|s| s == step).unwrap_or(0);
            (
                column,
                point.split('@').next().unwrap_or(""),
                outcome.is_ok(),
            )
        })
        .collect();
    let steps: Vec<String> = STEPS.iter().map(|s| s.name()).collect();
    let unreached =
        common::print_grid("fault point", dvdi::fault::POINTS, &steps, &tally, " kills");
    println!(
        "\n{} kills, {failed} failed, {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(unreached.is_empty(), "points never reached: {unreached:?}");
    assert_eq!(failed, 0, "crash matrix rows failed (see the table)");
}

/// `cargo tree` of the root workspace (this crate's own workspace is the only one that turns
/// the fault points on).
fn root_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let out = Command::new(cargo)
        .arg("tree")
        .arg("--offline")
        .arg("--manifest-path")
        .arg(&root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fault points must never reach a shipped artefact, however it is built from the root
/// workspace: `cargo build --release` (every member, features unified), `-p dvdcli -p
/// dvdi-ffi` (packaging/), or `--all-targets` (dev-dependencies too). No crate of the root
/// workspace turns the feature on, on any kind of edge; and the test doubles stay out of
/// what `dvdcli` and `dvdi-ffi` link. (`scripts/test.sh` also looks for `DVDI_FAULT` in the
/// root workspace's `dvdcli` and `libdvdi_ffi.so`.)
#[test]
fn root_workspace_builds_have_no_fault_points() {
    let tree = root_tree(&["--workspace", "-e", "features", "-i", "dvdi"]);
    assert!(
        tree.contains("dvdcli") && tree.contains("dvdi-ffi"),
        "{tree}"
    );
    assert!(!tree.contains("fault-points"), "{tree}");
    let shipped = root_tree(&[
        "-p",
        "dvdcli",
        "-p",
        "dvdi-ffi",
        "-e",
        "normal,features",
        "-i",
        "dvdi",
    ]);
    assert!(shipped.contains("dvdi"), "{shipped}");
    assert!(!shipped.contains("fault-points"), "{shipped}");
    assert!(!shipped.contains("test-doubles"), "{shipped}");
}

/// The agent killed while `dvdi-csi` is still publishing (here: `ControllerPublishVolume`
/// delayed by the plugin): the orphaned program finishes its calls after the agent is gone.
/// The recover that follows must not race it — the CSI spec asks the CO for one call in
/// flight per volume — so the volume's lock must stay held until the program exits, and the
/// unpublish that recover sends must come after the orphan's publish, leaving nothing.
#[test]
fn an_orphaned_csi_publish_is_not_raced_by_recover() {
    if !require_root("an_orphaned_csi_publish_is_not_raced_by_recover") {
        return;
    }
    use dvdi_testkit::csi_plugin::CsiFault;
    let delay = std::time::Duration::from_millis(1500);
    let world = World::new();
    world
        .csi()
        .set_fault("ControllerPublishVolume", CsiFault::Delay(delay), Some(1));
    let mut child = world
        .harness(&["prepare", "A"], None, None)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while world.csi().count("ControllerPublishVolume") == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no ControllerPublishVolume"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    world.run_ok(&["recover"]).unwrap();
    // Whatever the orphan still does is over by now (it may not outlive its deadlines).
    if let Some(left) = (delay * 3).checked_sub(killed.elapsed()) {
        std::thread::sleep(left);
    }
    let end = world.inspect();
    assert!(
        end["volumes"].as_array().unwrap().is_empty(),
        "ledger not empty: {end}"
    );
    assert_eq!(common::check_csi_clean(&world), Ok(()));
    assert_eq!(world.mounts(), Vec::<PathBuf>::new());
    let calls = world.csi().calls();
    let last_publish = calls.iter().rposition(|c| c == "NodePublishVolume");
    let last_unpublish = calls.iter().rposition(|c| c == "NodeUnpublishVolume");
    assert!(
        last_publish < last_unpublish,
        "calls out of order: {calls:?}"
    );
}
