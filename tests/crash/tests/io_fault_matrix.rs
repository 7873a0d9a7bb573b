//! The I/O fault matrix (root), beside the crash matrix: for every I/O fault point of the
//! library (`dvdi::fault::IO_POINTS`: record and temp-file writes, renames, unlinks, fsyncs,
//! directory creation, the `local` driver's state and image, a CSI driver's records and
//! directories, loop attach, mkfs, mount), at
//! every pass of it in every step of the scenario (`dvdi_crash`: prepare A, prepare B, cleanup
//! A, cleanup B, a recover, a prepare C that fails and rolls back, and a `dvdcli exec`-style
//! container E), make that one call fail with `ENOSPC`, `EIO` and `EROFS` in turn, and check:
//!
//! - the step returns (within 60 s; the plugin deadlines are 10 s), and when it fails its error
//!   says what the fault was and names a file of the test's world;
//! - no lock is held after it returns, and the next operation on its volumes succeeds: the same
//!   process, on the same handle (as the agent would), prepares and cleans up a probe
//!   container that uses the same volumes (`--probe`);
//! - nothing is left mounted that no record covers: right after the step, every `local`
//!   volume mounted in the test's directory, and every mount id the plugin holds, is in the
//!   ledger (as a mount or a failed unmount to retry);
//! - once the fault is gone the agent's follow-up succeeds (a failed prepare's container is
//!   cleaned up, as Mesos destroys it), recover reports no failed unmount and keeps every
//!   running container's volumes mounted with the mount id they had, and after the agent's
//!   last cleanups the ledger is empty, nothing is mounted, no loop device is left, and every
//!   Mount the plugin saw got its Unmount.
//!
//! Prints the grid and every row (`cargo nextest run -p dvdi-crash --no-capture`); each row
//! also goes to stderr as soon as it is done. While working on one step or point,
//! `DVDI_IO_MATRIX_ONLY=TEXT` runs only the cases whose step or point contains TEXT (the test
//! then fails, so a filtered run never passes for the whole matrix).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dvdi_testkit::env::require_root;
use serde_json::Value;

mod common;
use common::World;

/// How long a faulted step (with its probe) may take before it counts as hung: three times
/// the harness's plugin deadline (10 s), which no healthy step comes near.
const HUNG: Duration = Duration::from_secs(30);

const ERRNOS: &[&str] = &["ENOSPC", "EIO", "EROFS"];

/// I/O points the scenario cannot reach, and why.
const UNREACHED: &[(&str, &str)] = &[(
    "durable.unlink",
    "a record is deleted by unlink only when its directory already keeps the most spare temp \
     files (else it is renamed to a spare: `durable.rename`), which a fresh process never has",
)];

/// One step of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Prepare(&'static str),
    Cleanup(&'static str),
    /// A recover whose agent knows B (A and B prepared before).
    Recover,
    /// `dvdcli exec`'s part: reap, prepare E held by the process, clean E up.
    Exec,
}

const STEPS: &[Step] = &[
    Step::Prepare("A"),
    Step::Prepare("B"),
    Step::Cleanup("A"),
    Step::Cleanup("B"),
    Step::Recover,
    Step::Prepare("C"),
    Step::Exec,
];

impl Step {
    fn name(self) -> String {
        match self {
            Step::Prepare(id) => format!("prepare {id}"),
            Step::Cleanup(id) => format!("cleanup {id}"),
            Step::Recover => "recover".into(),
            Step::Exec => "exec E".into(),
        }
    }

    fn args(self) -> Vec<&'static str> {
        match self {
            Step::Prepare(id) => vec!["prepare", id],
            Step::Cleanup(id) => vec!["cleanup", id],
            Step::Recover => vec!["recover", "B"],
            Step::Exec => vec!["exec", "E"],
        }
    }

    /// The steps run (without fault) before this one.
    fn setup(self) -> &'static [Step] {
        match self {
            Step::Prepare("A") | Step::Prepare("C") | Step::Exec => &[],
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
                Step::Recover | Step::Exec => {}
            }
        }
        alive
    }

    /// Running containers that must keep their volumes through this step, whatever it does.
    fn must_hold(self) -> BTreeSet<&'static str> {
        let mut alive = self.alive_before();
        match self {
            Step::Cleanup(x) => {
                alive.remove(x);
            }
            Step::Recover => alive.retain(|c| *c == "B"),
            Step::Prepare(_) | Step::Exec => {}
        }
        alive
    }
}

/// The I/O points (with pass numbers) `step` passes, found by running it with a trace.
fn io_points_of(step: Step) -> Vec<String> {
    let world = World::new();
    for s in step.setup() {
        world.run_ok(&s.args()).unwrap();
    }
    // Prepare C fails by design (and rolls back); every other step succeeds.
    let fails = step == Step::Prepare("C");
    common::traced_points(&world, &step.args(), "DVDI_FAULT_IO_TRACE", fails)
}

/// What `strerror` says for the errnos of the matrix.
fn errno_text(errno: &str) -> &'static str {
    match errno {
        "ENOSPC" => "No space left on device",
        "EIO" => "Input/output error",
        "EROFS" => "Read-only file system",
        other => panic!("no text for {other}"),
    }
}

/// Runs the faulted step with its probe; its JSON line, or why there is none.
fn run_faulted(world: &World, step: Step, fault: &str) -> Result<Value, String> {
    let mut child = world
        .harness(&step.args(), None, None)
        .arg("--probe")
        .env("DVDI_FAULT_IO", fault)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HUNG {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: no answer within {} s", HUNG.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    serde_json::from_str(stdout.trim())
        .map_err(|e| format!("no JSON line ({status}): {e}: {stdout:?}"))
}

/// Every `local` volume mounted under the world, and every plugin mount id not unmounted,
/// must be covered by the ledger (a mount, or a failed unmount to retry).
fn check_covered(world: &World) -> Result<(), String> {
    let ledger = dvdi::ledger::Ledger::open(world.path("checkpoint")).map_err(|e| e.to_string())?;
    let mut covered_ids = BTreeSet::new();
    let mut covered_local = BTreeSet::new();
    let mut csi_covered = false;
    for v in ledger.list_volumes().map_err(|e| e.to_string())? {
        let record = v
            .entry
            .record
            .map_err(|e| format!("unreadable record: {e}"))?;
        let held = record.mount.is_some() || !record.failed_unmounts.is_empty();
        if let Some(m) = &record.mount {
            covered_ids.insert(m.id.clone());
        }
        covered_ids.extend(record.failed_unmounts.iter().map(|f| f.mount_id.clone()));
        if held && record.driver.as_str() == "local" {
            covered_local.insert(world.path("volumes").join(record.name.as_str()));
        }
        if held && record.driver.as_str() == dvdi_crash::CSI_DRIVER {
            csi_covered = true;
        }
    }
    // The CSI volume's staging and target mounts, and what the plugin holds, need a record.
    let csi_dir = world.path("csi-root").join(dvdi_crash::CSI_VOLUME);
    let csi_held = world.csi_leftovers();
    if !csi_held.is_empty() && !csi_covered {
        return Err(format!(
            "the CSI plugin holds {csi_held} and no record covers it"
        ));
    }
    for mp in world.mounts() {
        if mp.starts_with(&csi_dir) {
            if !csi_covered {
                return Err(format!(
                    "{} is mounted and no record covers it",
                    mp.display()
                ));
            }
            continue;
        }
        let Ok(rest) = mp.strip_prefix(world.path("volumes")) else {
            return Err(format!("unexpected mount {}", mp.display()));
        };
        let volume = world.path("volumes").join(
            rest.components()
                .next()
                .map_or(PathBuf::new(), |c| c.as_os_str().into()),
        );
        if !covered_local.contains(&volume) {
            return Err(format!(
                "{} is mounted and no record covers it",
                mp.display()
            ));
        }
    }
    let (mounts, unmounts) = world.plugin_calls();
    for id in mounts.iter().filter(|id| !unmounts.contains(id)) {
        if !covered_ids.contains(id) {
            return Err(format!(
                "plugin holds mount id {id} and no record covers it"
            ));
        }
    }
    Ok(())
}

/// Fails `point` (`NAME@N`) of `step` with `errno`, then checks the invariants. `Ok(details)`
/// or `Err(what failed)`.
fn run_case(step: Step, point: &str, errno: &str) -> Result<String, String> {
    let world = World::new();
    for s in step.setup() {
        world.run_ok(&s.args())?;
    }
    let before = world.inspect();
    let csi_calls_before = world.csi().calls().len();
    let line = run_faulted(&world, step, &format!("{point}={errno}"))?;
    if let Some(probe) = line["probe"].as_str() {
        return Err(format!("the next operation on the volumes failed: {probe}"));
    }
    if line.get("probe").is_none() {
        return Err(format!("no probe ran: {line}"));
    }
    let failed = line.get("error").and_then(Value::as_str);
    // Deleting a temp file of ours is best effort: the next sweep removes what it leaves.
    let best_effort = point.starts_with("durable.unlink_temp@");
    let world_dir = world.path("");
    let mut details = match failed {
        Some(e) if best_effort && step != Step::Prepare("C") => {
            return Err(format!("a temp file's delete failed it: {e}"));
        }
        Some(e) if best_effort => format!("failed as without the fault: {}", short(e, &world_dir)),
        Some(e) => {
            if !e.contains(errno_text(errno)) {
                return Err(format!("the error does not say what failed: {e}"));
            }
            if !e.contains(world_dir.to_string_lossy().trim_end_matches('/')) {
                return Err(format!("the error names no file: {e}"));
            }
            format!("failed: {}", short(e, &world_dir))
        }
        None if step == Step::Prepare("C") => {
            return Err("prepare C succeeded".into());
        }
        None if best_effort => "succeeded; the temp file is left for the next sweep".to_owned(),
        // Recover never aborts: what failed is in its report, for the agent's log.
        None if step == Step::Recover => {
            let messages = line["ok"]["messages"].to_string();
            if !messages.contains(errno_text(errno)) {
                return Err(format!("recover's report does not say what failed: {line}"));
            }
            format!("recover reported it: {}", short(&messages, &world_dir))
        }
        None => return Err("the step succeeded and said nothing of the fault".into()),
    };
    check_covered(&world)?;

    // The agent's follow-up, the fault gone: a failed prepare's container is destroyed.
    let mut known = step.must_hold();
    match step {
        Step::Prepare(x) if failed.is_some() => {
            world
                .run_ok(&["cleanup", x])
                .map_err(|e| format!("the agent's cleanup of the failed {x}: {e}"))?;
        }
        Step::Prepare(x) => {
            known.insert(x);
        }
        _ => {}
    }
    let mut recover = vec!["recover"];
    recover.extend(&known);
    let report = world.run_ok(&recover)?;
    if report["failed_unmounts"].as_u64() != Some(0) {
        return Err(format!("recover reports failed unmounts: {report}"));
    }
    details.push_str(&format!(
        "; recover: cleaned {}, unmounted {}",
        report["cleaned_containers"], report["unmounted_volumes"]
    ));

    // Running containers kept their volumes, mounted, with the mount id they had.
    let after = world.inspect();
    let (_, unmounted) = world.plugin_calls();
    let mounted_now = world.mounts();
    for c in step.must_hold() {
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
                return Err(format!("{driver}/{name} of running {c}: no record"));
            };
            let holds = vol["holders"].as_array().unwrap().contains(&Value::from(c));
            if vol["state"] != "mounted" || !holds {
                return Err(format!("{driver}/{name} of running {c}: {vol}"));
            }
            let id = vol["mount_id"].as_str().unwrap_or("");
            if find(&before).map(|v| v["mount_id"].clone()) != Some(Value::from(id)) {
                return Err(format!("{driver}/{name} of running {c}: mount id changed"));
            }
            let gone = if *driver == "local" {
                let mp = PathBuf::from(vol["mountpoint"].as_str().unwrap_or(""));
                !mounted_now.contains(&mp)
            } else if *driver == dvdi_crash::CSI_DRIVER {
                common::check_csi_held(&world, id, csi_calls_before)
                    .map_err(|e| format!("{driver}/{name} of running {c}: {e}"))?;
                false
            } else {
                unmounted.iter().any(|u| u == id)
            };
            if gone {
                return Err(format!("{driver}/{name} unmounted under running {c}"));
            }
        }
    }

    // The agent's last cleanups leave nothing.
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
        return Err(format!("leaked loop devices: {loops:?}"));
    }
    common::check_csi_clean(&world)?;
    let (mounts, unmounts) = world.plugin_calls();
    for id in &mounts {
        // A second Unmount is the safe direction: a rollback's Unmount whose final record
        // write failed leaves the record saying `mounting`, so the next release sends it again
        // and the plugin refuses it.
        match unmounts.iter().filter(|u| *u == id).count() {
            1 => {}
            2 => details.push_str("; an Unmount sent twice (its record write had failed)"),
            n => return Err(format!("plugin mount id {id}: {n} Unmounts")),
        }
    }
    let strays = unmounts.iter().filter(|u| !mounts.contains(u)).count();
    if strays > 0 {
        details.push_str(&format!(
            "; {strays} Unmount of an id whose Mount was never sent"
        ));
    }
    Ok(details)
}

/// `e` with the world's directory shortened to `…` and cut to a table cell's length.
fn short(e: &str, world_dir: &std::path::Path) -> String {
    let dir = world_dir.to_string_lossy();
    let text = e.replace(dir.trim_end_matches('/'), "…");
    let mut cut: String = text.chars().take(160).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.replace('|', "\\|")
}

#[test]
fn every_io_fault_at_every_step_fails_cleanly_and_leaves_nothing() {
    if !require_root("every_io_fault_at_every_step_fails_cleanly_and_leaves_nothing") {
        return;
    }
    let started = Instant::now();
    let only = std::env::var("DVDI_IO_MATRIX_ONLY").ok();
    let mut cases = Vec::new();
    for &step in STEPS {
        for point in io_points_of(step) {
            for errno in ERRNOS {
                let wanted = match only.as_deref() {
                    Some(o) => step.name().contains(o) || point.contains(o),
                    None => true,
                };
                if wanted {
                    cases.push((step, point.clone(), *errno));
                }
            }
        }
    }
    let rows = common::run_cases(&cases, |(step, point, errno)| {
        let outcome = run_case(*step, point, errno);
        eprintln!("{} {point} {errno}: {outcome:?}", step.name());
        outcome
    });

    println!("\n| I/O point | errno | step | outcome | found |");
    println!("|---|---|---|---|---|");
    let mut failed = 0;
    for (i, outcome, took) in &rows {
        let (step, point, errno) = &cases[*i];
        let (verdict, found) = match outcome {
            Ok(d) => ("pass", d.clone()),
            Err(e) => {
                failed += 1;
                ("FAIL", e.clone())
            }
        };
        println!(
            "| `{point}` | {errno} | {} | {verdict} | {found} ({} ms) |",
            step.name(),
            took.as_millis()
        );
    }
    // Cases per point and step (every pass × every errno).
    let tally: Vec<common::Tally> = rows
        .iter()
        .map(|(i, outcome, _)| {
            let (step, point, _) = &cases[*i];
            let column = STEPS.iter().position(|s| s == step).unwrap_or(0);
            (
                column,
                point.split('@').next().unwrap_or(""),
                outcome.is_ok(),
            )
        })
        .collect();
    let steps: Vec<String> = STEPS.iter().map(|s| s.name()).collect();
    let never = common::print_grid("I/O point", dvdi::fault::IO_POINTS, &steps, &tally, "");
    // A point the scenario cannot reach must be listed as such, and one listed must stay so.
    let mut unreached: Vec<&str> = never
        .iter()
        .filter(|n| !UNREACHED.iter().any(|(u, _)| u == *n))
        .copied()
        .collect();
    unreached.extend(
        UNREACHED
            .iter()
            .map(|(u, _)| *u)
            .filter(|u| !never.contains(u)),
    );
    println!(
        "\n{} cases ({} steps × I/O point passes × {} errnos), {failed} failed, {:.1} s",
        rows.len(),
        STEPS.len(),
        ERRNOS.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(failed, 0, "I/O fault matrix rows failed (see the table)");
    assert!(only.is_none(), "DVDI_IO_MATRIX_ONLY ran part of the matrix");
    for (name, why) in UNREACHED {
        println!("`{name}` is not reached by the scenario: {why}");
    }
    assert!(
        unreached.is_empty(),
        "I/O points never reached, or reached though listed in UNREACHED: {unreached:?}"
    );
}
