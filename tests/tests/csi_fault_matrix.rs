//! The plugin fault matrix for CSI calls (root): a container with two volumes — `ok`, a
//! healthy `local` volume, and `vol` on the CSI test plugin — through `Isolator::prepare` and
//! `cleanup`, with every CSI call the phase makes (found by running the phase once, cleanly,
//! and reading the plugin's call log) failing each way a CSI plugin fails: it hangs, it
//! answers an error code (`INTERNAL`, `NOT_FOUND`, `FAILED_PRECONDITION`, `UNAVAILABLE`), it
//! is slow but in time, its process exits mid-call (and is started again after).
//!
//! For each row: the error names the driver, the call and, for a hang, the limit; the phase
//! returns within the deadlines of its attempts (every call has one more attempt on a new
//! connection when it got no answer) plus a margin; a failed prepare rolls back, so nothing is
//! staged, published, controller-published or mounted; a failed cleanup leaves no holder on the
//! volume; and once the plugin is healthy, one `recover` leaves nothing anywhere and an empty
//! ledger. Prints the table (`cargo nextest run -p dvdi-tests --test csi_fault_matrix
//! --no-capture`).

use std::time::{Duration, Instant};

use dvdi::{ContainerConfig, ContainerId, Isolator, IsolatorConfig, Logger};
use dvdi_testkit::csi_plugin::CsiFault;
use dvdi_testkit::env::require_root;

mod common;
use common::csi::{CsiWorld, DRIVER};

const DEADLINE: Duration = Duration::from_millis(700);
/// Above the attempts' deadlines: the undo calls, two program starts, scheduling.
const MARGIN: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prepare,
    Cleanup,
}

fn isolator(world: &CsiWorld) -> Isolator {
    Isolator::from_config(IsolatorConfig {
        checkpoint_dir: world.path("checkpoint"),
        settings: world.settings("a", DEADLINE),
        log: Logger::new(|_, _| {}),
        ..IsolatorConfig::default()
    })
    .unwrap()
}

fn config(world: &CsiWorld, id: &str) -> ContainerConfig {
    let sandbox = world.path("sandboxes").join(id);
    std::fs::create_dir_all(&sandbox).unwrap();
    ContainerConfig {
        env: [
            ("DVDI_VOLUME_DRIVER", "local"),
            ("DVDI_VOLUME_NAME", "ok"),
            ("DVDI_VOLUME_CONTAINERPATH", "ok"),
            ("DVDI_VOLUME_DRIVER1", DRIVER),
            ("DVDI_VOLUME_NAME1", "vol"),
            ("DVDI_VOLUME_OPTS1", "size=64M"),
            ("DVDI_VOLUME_CONTAINERPATH1", "vol"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        sandbox,
        ..ContainerConfig::default()
    }
}

fn cid(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

/// The CSI calls each phase makes, in order, once each: read off a clean run.
fn calls_of_each_phase() -> (Vec<String>, Vec<String>) {
    let world = CsiWorld::new();
    let iso = isolator(&world);
    iso.prepare(&cid("c1"), &config(&world, "c1")).unwrap();
    let prepare = world.plugin.calls();
    world.plugin.clear_calls();
    iso.cleanup(&cid("c1")).unwrap();
    let cleanup = world.plugin.calls();
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());
    let unique = |calls: Vec<String>| {
        let mut seen = Vec::new();
        for c in calls {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
        seen
    };
    (unique(prepare), unique(cleanup))
}

#[derive(Debug, Clone)]
enum Kind {
    Fault(CsiFault),
    /// The plugin process exits at the call, and is started again after the phase.
    Exit,
}

struct Row {
    call: String,
    fault: String,
    phase: Phase,
    took: Duration,
    error: String,
    result: Result<String, String>,
}

fn kinds() -> Vec<(String, Kind, bool)> {
    let error = |code: &str| {
        (
            format!("error {code}"),
            Kind::Fault(CsiFault::Error {
                code: code.into(),
                message: format!("injected {code}"),
            }),
            false,
        )
    };
    vec![
        ("hang".into(), Kind::Fault(CsiFault::Hang), false),
        error("INTERNAL"),
        error("NOT_FOUND"),
        error("FAILED_PRECONDITION"),
        error("UNAVAILABLE"),
        (
            "slow, in time (300 ms)".into(),
            Kind::Fault(CsiFault::Delay(Duration::from_millis(300))),
            true,
        ),
        ("process exits".into(), Kind::Exit, false),
    ]
}

fn run(call: &str, fault: &str, kind: &Kind, succeeds: bool, phase: Phase) -> Row {
    let mut world = CsiWorld::new();
    let mut row = Row {
        call: call.to_owned(),
        fault: fault.to_owned(),
        phase,
        took: Duration::ZERO,
        error: String::new(),
        result: Ok(String::new()),
    };
    let hang = matches!(kind, Kind::Fault(CsiFault::Hang));
    row.result = (|| -> Result<String, String> {
        let iso = isolator(&world);
        let c1 = cid("c1");
        let mut notes = Vec::new();
        if phase == Phase::Cleanup {
            iso.prepare(&c1, &config(&world, "c1"))
                .map_err(|e| format!("prepare before the fault failed: {e}"))?;
        }
        world.plugin.set_fault(
            call,
            match kind {
                Kind::Fault(f) => f.clone(),
                Kind::Exit => CsiFault::Exit,
            },
            None,
        );
        let started = Instant::now();
        let outcome = match phase {
            Phase::Prepare => iso.prepare(&c1, &config(&world, "c1")).map(|_| ()),
            Phase::Cleanup => iso.cleanup(&c1),
        };
        row.took = started.elapsed();
        world.plugin.clear_faults();
        // A call whose deadline passed is counted once, in the agent's dvdi/plugin_timeouts.
        let timeouts = iso.metrics().plugin_timeouts;
        if timeouts != u64::from(hang) {
            return Err(format!("plugin_timeouts is {timeouts}"));
        }
        world
            .plugin
            .ensure_running()
            .map_err(|e| format!("restarting the plugin: {e}"))?;
        match (&outcome, succeeds) {
            (Ok(()), true) => {}
            (Ok(()), false) => return Err("succeeded, but must fail".into()),
            (Err(e), true) => return Err(format!("must succeed: {e}")),
            (Err(e), false) => {
                let text = e.to_string();
                row.error = text.clone();
                if !text.contains(&format!("\"{DRIVER}\"")) {
                    return Err("the error does not name the driver".into());
                }
                if !text.contains(call) {
                    return Err("the error does not name the call".into());
                }
                if hang && !text.contains("got no answer within 700 ms") {
                    return Err("the error does not name the limit".into());
                }
                if let Kind::Fault(CsiFault::Error { code, .. }) = kind {
                    if code != "UNAVAILABLE" && !text.contains(code.as_str()) {
                        return Err("the error does not name the code".into());
                    }
                }
            }
        }
        // Each attempt of the failed call, and its undo, are bounded by their deadlines.
        let bound = DEADLINE * (1 + dvdi::csi::RETRIES) + MARGIN;
        if row.took > bound {
            return Err(format!("took {:?}, over {bound:?}", row.took));
        }
        let ins = iso.inspect().map_err(|e| e.to_string())?;
        if !succeeds && ins.volumes.iter().any(|v| !v.holders.is_empty()) {
            return Err(format!("a volume is still held: {:?}", ins.volumes));
        }
        if phase == Phase::Prepare && !succeeds {
            let left = world.leftovers();
            // A call that got no answer and whose undo failed too is remembered as an Unmount
            // for recover to retry; anything else must be gone already.
            let remembered: usize = ins.volumes.iter().map(|v| v.failed_unmounts.len()).sum();
            if !left.is_empty() && remembered == 0 {
                return Err(format!("a failed prepare left {left:?}"));
            }
            if !left.is_empty() {
                notes.push(format!("left for recover: {}", left.join(", ")));
            }
        }
        let remembered: usize = ins.volumes.iter().map(|v| v.failed_unmounts.len()).sum();
        if remembered > 0 {
            notes.push(format!("{remembered} Unmount remembered"));
        }
        if succeeds {
            iso.cleanup(&c1).map_err(|e| format!("cleanup: {e}"))?;
        }
        drop(iso);
        let report = isolator(&world)
            .recover(&[], &[])
            .map_err(|e| e.to_string())?;
        if report.retried_unmounts > 0 {
            notes.push(format!("recover: {} retried", report.retried_unmounts));
        }
        let mut ins = isolator(&world).inspect().map_err(|e| e.to_string())?;
        // A Mount that got no answer may still land: its refused Unmount is kept until twice
        // its deadline has passed, and a later recover forgets it.
        if let Some(until) = ins
            .volumes
            .iter()
            .flat_map(|v| &v.failed_unmounts)
            .filter_map(|f| f.mount_may_land_until_ms)
            .max()
        {
            let now = dvdi::ledger::records::now_ms();
            std::thread::sleep(Duration::from_millis(until.saturating_sub(now) + 50));
            isolator(&world)
                .recover(&[], &[])
                .map_err(|e| e.to_string())?;
            ins = isolator(&world).inspect().map_err(|e| e.to_string())?;
        }
        let left = world.leftovers();
        if !left.is_empty() {
            return Err(format!("left after recover: {left:?}"));
        }
        let failed: usize = ins.volumes.iter().map(|v| v.failed_unmounts.len()).sum();
        if !ins.containers.is_empty() || failed > 0 {
            return Err(format!("ledger not empty after recover: {ins:?}"));
        }
        Ok(notes.join("; "))
    })();
    row
}

#[test]
fn every_csi_call_fault_fails_in_time_names_plugin_call_and_limit_and_leaves_nothing() {
    if !require_root(
        "every_csi_call_fault_fails_in_time_names_plugin_call_and_limit_and_leaves_nothing",
    ) {
        return;
    }
    let started = Instant::now();
    let (prepare_calls, cleanup_calls) = calls_of_each_phase();
    for needed in [
        "ControllerPublishVolume",
        "NodeStageVolume",
        "NodePublishVolume",
        "CreateVolume",
    ] {
        assert!(
            prepare_calls.iter().any(|c| c == needed),
            "{prepare_calls:?}"
        );
    }
    for needed in [
        "NodeUnpublishVolume",
        "NodeUnstageVolume",
        "ControllerUnpublishVolume",
    ] {
        assert!(
            cleanup_calls.iter().any(|c| c == needed),
            "{cleanup_calls:?}"
        );
    }
    let mut rows = Vec::new();
    for (phase, calls) in [
        (Phase::Prepare, &prepare_calls),
        (Phase::Cleanup, &cleanup_calls),
    ] {
        for call in calls {
            for (fault, kind, succeeds) in kinds() {
                rows.push(run(call, &fault, &kind, succeeds, phase));
            }
        }
    }
    println!("\n| phase | call | fault | time to error | error | result |");
    println!("|---|---|---|---|---|---|");
    let mut failed = 0;
    for row in &rows {
        let (verdict, notes) = match &row.result {
            Ok(n) => ("pass", n.clone()),
            Err(e) => {
                failed += 1;
                ("FAIL", e.clone())
            }
        };
        // From the plugin's words on: the container, volume and socket path are the same in
        // every row.
        let tail = row
            .error
            .split_once("sock): ")
            .map_or(row.error.as_str(), |(_, t)| t);
        let error = dvdi_tests::table::cell(tail, 200);
        println!(
            "| {:?} | {} | {} | {} ms | {} | {verdict}{} |",
            row.phase,
            row.call,
            row.fault,
            row.took.as_millis(),
            if error.is_empty() {
                "(succeeds)".into()
            } else {
                error
            },
            if notes.is_empty() {
                String::new()
            } else {
                format!(": {notes}")
            }
        );
    }
    println!(
        "\n{} rows ({} prepare calls, {} cleanup calls × {} faults), {failed} failed, in {:.1} s",
        rows.len(),
        prepare_calls.len(),
        cleanup_calls.len(),
        kinds().len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(failed, 0, "rows failed (see the table above)");
}

/// A plugin restarted between prepare and cleanup keeps its state (it is the plugin's), and
/// one that is down when the cleanup starts is waited for over the connect window: the
/// cleanup succeeds and nothing is left.
#[test]
fn a_plugin_restarted_between_calls_is_waited_for_and_released_from() {
    if !require_root("a_plugin_restarted_between_calls_is_waited_for_and_released_from") {
        return;
    }
    let mut world = CsiWorld::new();
    let iso = isolator(&world);
    iso.prepare(&cid("c1"), &config(&world, "c1")).unwrap();
    world.plugin.restart().unwrap();
    iso.prepare(&cid("c2"), &config(&world, "c2")).unwrap();
    iso.cleanup(&cid("c1")).unwrap();

    // Down when the last cleanup starts, back 300 ms later: inside the 700 ms window.
    world
        .plugin
        .set_fault("GetPluginInfo", CsiFault::Exit, Some(1));
    let started = Instant::now();
    let restarter = {
        let socket = world.plugin.socket().to_owned();
        std::thread::spawn(move || {
            // Wait for the exit (the socket stays; nothing answers on it).
            std::thread::sleep(Duration::from_millis(300));
            socket
        })
    };
    let cleanup = std::thread::scope(|s| {
        let handle = s.spawn(|| iso.cleanup(&cid("c2")));
        restarter.join().unwrap();
        world.plugin.ensure_running().unwrap();
        handle.join().unwrap()
    });
    cleanup.unwrap_or_else(|e| panic!("cleanup after {:?}: {e}", started.elapsed()));
    assert!(world.leftovers().is_empty(), "{:?}", world.leftovers());
    assert!(
        world
            .plugin
            .calls()
            .iter()
            .filter(|c| *c == "GetPluginInfo")
            .count()
            >= 2,
        "the call the plugin died on was sent again"
    );
}
