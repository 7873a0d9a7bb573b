//! Recovery by a second process (root): an "agent" process prepares (or is killed in the
//! middle of a Mount), another process recovers from the same checkpoint dir, and every case
//! ends with the mount table and the ledger agreeing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{child_command, require_root, run_child, Drivers, Step, World};

#[test]
fn child_entry() {
    common::child_entry();
}

const ENV: &[(&str, &str)] = &[
    ("DVDI_VOLUME_DRIVER", "local"),
    ("DVDI_VOLUME_NAME", "rec-data"),
    ("DVDI_VOLUME_OPTS", "size=64M"),
    ("DVDI_VOLUME_CONTAINERPATH", "data"),
];

fn step(world: &World, drivers: Drivers, step: Step) -> serde_json::Value {
    let got = run_child(&world.child_task(drivers, vec![step]));
    got[0].ok().clone()
}

/// Agent 1 prepares `c1` and exits without cleaning up (as a crashed agent would).
fn agent_prepares(world: &World) {
    let info = step(
        world,
        Drivers::default(),
        Step::Prepare {
            id: "c1".into(),
            config: world.config("c1", ENV),
        },
    );
    assert_eq!(info["clone_newns"], true);
    assert_eq!(world.volume_mounts().len(), 1);
    world.assert_ledger_matches_mounts();
}

/// Agent 2 recovers.
fn agent_recovers(world: &World, known: &[&str], orphans: &[&str]) -> serde_json::Value {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    step(
        world,
        Drivers::default(),
        Step::Recover {
            known: strings(known),
            orphans: strings(orphans),
        },
    )
}

fn agent_cleans_up(world: &World, id: &str) {
    step(world, Drivers::default(), Step::Cleanup { id: id.into() });
}

fn assert_all_released(world: &World) {
    assert!(
        world.volume_mounts().is_empty(),
        "{:?}",
        world.volume_mounts()
    );
    assert!(world.loops_settled().is_empty());
    world.assert_ledger_matches_mounts();
    let ledger = dvdi::ledger::Ledger::open(world.checkpoint()).unwrap();
    assert!(ledger.list_containers().unwrap().is_empty());
    assert!(ledger.list_volumes().unwrap().is_empty());
}

fn damage_record(world: &World, how: &str) {
    let path = world.checkpoint().join("containers/c1.json");
    let full = std::fs::read(&path).unwrap();
    let bytes = match how {
        "truncated" => full[..full.len() / 3].to_vec(),
        "empty" => Vec::new(),
        _ => unreachable!(),
    };
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_running_container_and_a_known_orphan_keep_their_mounts() {
    if !require_root("a_running_container_and_a_known_orphan_keep_their_mounts") {
        return;
    }
    for (known, orphans) in [(&["c1"][..], &[][..]), (&[][..], &["c1"][..])] {
        let world = World::new();
        agent_prepares(&world);
        let report = agent_recovers(&world, known, orphans);
        assert_eq!(report["kept_containers"], 1);
        assert_eq!(report["unmounted_volumes"], 0);
        assert_eq!(
            world.volume_mounts().len(),
            1,
            "never unmount under a live task"
        );
        world.assert_ledger_matches_mounts();
        // The agent's cleanup comes later, from yet another process.
        agent_cleans_up(&world, "c1");
        assert_all_released(&world);
    }
}

#[test]
fn a_container_the_agent_does_not_know_is_cleaned_up() {
    if !require_root("a_container_the_agent_does_not_know_is_cleaned_up") {
        return;
    }
    let world = World::new();
    agent_prepares(&world);
    let report = agent_recovers(&world, &["someone-else"], &[]);
    assert_eq!(report["cleaned_containers"], 1);
    assert_eq!(report["unmounted_volumes"], 1);
    assert_all_released(&world);
}

#[test]
fn a_damaged_record_is_moved_aside_and_handled_conservatively() {
    if !require_root("a_damaged_record_is_moved_aside_and_handled_conservatively") {
        return;
    }
    for how in ["truncated", "empty"] {
        // Known to the agent: its mounts stay until its cleanup.
        let world = World::new();
        agent_prepares(&world);
        damage_record(&world, how);
        let report = agent_recovers(&world, &["c1"], &[]);
        assert_eq!(report["corrupt_records"], 1, "{how}");
        assert_eq!(
            world.volume_mounts().len(),
            1,
            "{how}: kept for the known container"
        );
        assert!(world
            .checkpoint()
            .join("containers/c1.json.corrupt")
            .exists());
        world.assert_ledger_matches_mounts();
        agent_cleans_up(&world, "c1");
        assert_all_released(&world);

        // Unknown to the agent: released.
        let world = World::new();
        agent_prepares(&world);
        damage_record(&world, how);
        let report = agent_recovers(&world, &[], &[]);
        assert_eq!(report["corrupt_records"], 1, "{how}");
        assert_eq!(report["unmounted_volumes"], 1, "{how}");
        assert_all_released(&world);
    }
}

/// Agent 1 is killed inside the driver's Mount, after the volume was really mounted: the
/// ledger says `mounting`, with the mount id it wrote before the call.
fn agent_killed_inside_mount(world: &World) {
    let env = [
        ("DVDI_VOLUME_DRIVER", "hang"),
        ("DVDI_VOLUME_NAME", "rec-hang"),
        ("DVDI_VOLUME_OPTS", "size=64M"),
    ];
    let task = world.child_task(
        Drivers {
            hang_after_mount: true,
            ..Drivers::default()
        },
        vec![Step::Prepare {
            id: "c1".into(),
            config: world.config("c1", &env),
        }],
    );
    let mut child = child_command(&task)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let hung = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains(common::HUNG_MARK));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(hung, "the child never reached the hanging Mount");
    assert_eq!(world.volume_mounts().len(), 1);
    let ledger = dvdi::ledger::Ledger::open(world.checkpoint()).unwrap();
    let volumes = ledger.list_volumes().unwrap();
    let record = volumes[0].entry.record.as_ref().unwrap();
    assert_eq!(record.state(), dvdi::ledger::VolumeState::Mounting);
}

#[test]
fn a_crash_inside_mount_is_unmounted_with_the_recorded_id() {
    if !require_root("a_crash_inside_mount_is_unmounted_with_the_recorded_id") {
        return;
    }
    // The agent no longer knows the container: recover unmounts.
    let world = World::new();
    agent_killed_inside_mount(&world);
    let report = agent_recovers(&world, &[], &[]);
    assert_eq!(report["unmounted_volumes"], 1, "{report}");
    assert_all_released(&world);

    // The agent still lists it: its prepare never returned, so no task runs on the mount and
    // no container record holds it (an agent container's record is written when its prepare
    // completes). Recover unmounts it with that id all the same; the agent's later cleanup
    // finds nothing left to do.
    let world = World::new();
    agent_killed_inside_mount(&world);
    let report = agent_recovers(&world, &["c1"], &[]);
    assert_eq!(report["unmounted_volumes"], 1, "{report}");
    assert_all_released(&world);
    agent_cleans_up(&world, "c1");
    assert_all_released(&world);
}
