//! Damaged records a dead `dvdcli exec` left, repaired by the reap every `dvdcli exec` and
//! `dvdcli inspect` runs first, and `recover_exec` (`dvdcli recover`).

use super::*;
use crate::holder::Holder;

use dvdi_testkit::records::DAMAGE;

/// Damages a record; a symlinked one points out of its directory.
fn damage(path: &Path, how: &str) {
    let elsewhere = path.parent().unwrap().parent().unwrap().join(format!(
        "{}.elsewhere",
        path.file_name().unwrap().to_str().unwrap()
    ));
    dvdi_testkit::records::damage(path, how, &elsewhere);
}

/// A process that ran and is gone: a dead `dvdcli exec`.
fn dead_holder() -> Holder {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = Holder::of_pid(child.id()).unwrap().unwrap();
    child.wait().unwrap();
    dead
}

/// Prepares an exec container (id from its holder, as `dvdcli exec` names it) with volume
/// `data`; returns its id and mount id.
fn exec_prepared(f: &Fixture, holder: Holder) -> (ContainerId, String) {
    let id = cid(&holder.exec_container_id());
    f.iso
        .prepare(
            &id,
            &ContainerConfig {
                holder: Some(holder),
                ..f.config(id.as_str(), ONE)
            },
        )
        .unwrap();
    let mount_id = f.driver.mounted_ids("data").into_iter().next().unwrap();
    (id, mount_id)
}

fn corrupt_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".corrupt"))
        .collect()
}

#[test]
fn a_damaged_record_of_a_dead_exec_is_reaped_and_its_volumes_released() {
    for how in DAMAGE {
        let f = Fixture::new();
        let (id, mount_id) = exec_prepared(&f, dead_holder());
        damage(&f.iso.ledger.container_path(&id), how);
        let report = f.iso.reap_dead_holders().unwrap();
        assert_eq!(report.reaped, vec![id.clone()], "{how}");
        assert!(report.errors.is_empty(), "{how}: {:?}", report.errors);
        assert_eq!(
            f.driver.calls_of(&format!("Unmount data {mount_id}")).len(),
            1,
            "{how}"
        );
        assert!(f.driver.mounted_ids("data").is_empty(), "{how}");
        assert!(f.volume_files().is_empty(), "{how}: {:?}", f.volume_files());
        // Kept for the operator, out of the way.
        assert_eq!(
            corrupt_files(&f.checkpoint().join("containers")).len(),
            1,
            "{how}"
        );
        // The volume is usable again at once.
        f.prepare("next", ONE).unwrap();
        f.iso.cleanup(&cid("next")).unwrap();
        assert!(f.driver.mounted_ids("data").is_empty(), "{how}");
    }
}

#[test]
fn a_damaged_record_of_a_live_exec_or_of_an_agent_container_is_left_alone() {
    let f = Fixture::new();
    let (live, _) = exec_prepared(&f, Holder::current().unwrap());
    f.prepare("agent", &[("DVDI_VOLUME_NAME", "other")])
        .unwrap();
    damage(&f.iso.ledger.container_path(&live), "garbage");
    damage(&f.iso.ledger.container_path(&cid("agent")), "garbage");
    let report = f.iso.reap_dead_holders().unwrap();
    assert!(report.reaped.is_empty());
    assert_eq!(f.driver.mounted_ids("data").len(), 1);
    assert_eq!(f.driver.mounted_ids("other").len(), 1);
    let report = f.iso.recover_exec().unwrap();
    assert!(report.reaped_containers.is_empty());
    assert_eq!(report.unattributed_records.len(), 2);
    assert_eq!(f.driver.mounted_ids("data").len(), 1);
    assert_eq!(f.driver.mounted_ids("other").len(), 1);
}

#[test]
fn a_damaged_volume_record_is_rebuilt_and_a_dead_execs_mount_released_with_its_id() {
    for how in DAMAGE {
        let f = Fixture::new();
        let (id, mount_id) = exec_prepared(&f, dead_holder());
        let path = f.iso.ledger.volume_path(&key("data"));
        damage(&path, how);
        let report = f.iso.reap_dead_holders().unwrap();
        assert_eq!(report.reaped, vec![id], "{how}");
        assert!(report.errors.is_empty(), "{how}: {:?}", report.errors);
        assert_eq!(report.repair.rebuilt_volume_records, 1, "{how}");
        assert_eq!(
            f.driver.calls_of(&format!("Unmount data {mount_id}")).len(),
            1,
            "{how}"
        );
        assert!(f.driver.mounted_ids("data").is_empty(), "{how}");
        assert_eq!(f.volume_files(), vec!["data.json.corrupt"], "{how}");
        f.prepare("next", ONE).unwrap();
        f.iso.cleanup(&cid("next")).unwrap();
        assert!(f.driver.mounted_ids("data").is_empty(), "{how}");
    }
}

#[test]
fn a_damaged_volume_record_of_live_holders_is_rebuilt_with_their_mount() {
    let f = Fixture::new();
    f.prepare("agent", ONE).unwrap();
    let (live, mount_id) = exec_prepared(&f, Holder::current().unwrap());
    damage(&f.iso.ledger.volume_path(&key("data")), "truncated");
    // Before: every prepare of the volume was refused.
    let report = f.iso.reap_dead_holders().unwrap();
    assert!(report.reaped.is_empty());
    let record = f.volume("data").unwrap();
    assert_eq!(record.mount.as_ref().unwrap().id, mount_id);
    assert_eq!(record.mount.as_ref().unwrap().state, MountState::Mounted);
    assert_eq!(record.holders, [cid("agent"), live.clone()].into());
    // Shared, not mounted again; the last cleanup unmounts with the id.
    f.prepare("third", ONE).unwrap();
    assert_eq!(f.driver.calls_of("Mount data").len(), 1);
    for c in [cid("third"), live, cid("agent")] {
        f.iso.cleanup(&c).unwrap();
    }
    assert_eq!(
        f.driver.calls_of(&format!("Unmount data {mount_id}")).len(),
        1
    );
}

#[test]
fn recover_exec_releases_dead_execs_and_leaves_agent_containers_alone() {
    let f = Fixture::new();
    f.prepare("agent", &[("DVDI_VOLUME_NAME", "kept")]).unwrap();
    let (dead, _) = exec_prepared(&f, dead_holder());
    // A dead exec that is still a holder of a shared volume but has no record any more.
    let gone = cid(&dead_holder().exec_container_id());
    let mut shared = f.volume("kept").unwrap();
    shared.holders.insert(gone.clone());
    f.iso.ledger.write_volume(&shared).unwrap();
    // A stuck unmount of another volume.
    f.prepare("stuck", &[("DVDI_VOLUME_NAME", "stuck")])
        .unwrap();
    f.driver
        .fail(Operation::Unmount, "stuck", Failure::Refuse, Some(1));
    f.iso.cleanup(&cid("stuck")).unwrap_err();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    std::fs::write(
        f.checkpoint()
            .join(format!("containers/.tmp-{}-0", child.id())),
        "{",
    )
    .unwrap();
    child.wait().unwrap();

    let report = f.iso.recover_exec().unwrap();
    assert_eq!(report.reaped_containers, vec![dead]);
    assert_eq!(report.dropped_holders, 1);
    assert_eq!(report.retried_unmounts, 1);
    assert_eq!(report.removed_temp_files, 1);
    assert_eq!(report.agent_containers, 1);
    assert!(report.is_clean(), "{report:?}");
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.driver.mounted_ids("stuck").is_empty());
    // The agent's container and its volume: untouched.
    assert_eq!(f.driver.mounted_ids("kept").len(), 1);
    assert_eq!(f.volume("kept").unwrap().holders, [cid("agent")].into());
    assert_eq!(f.container_files(), vec!["agent.json"]);
}

#[test]
fn an_unheld_mount_stays_while_a_damaged_record_could_be_its_holders() {
    let f = Fixture::new();
    f.prepare("agent", ONE).unwrap();
    // The agent's record is damaged and the volume record lost its holder: whose is it?
    damage(&f.iso.ledger.container_path(&cid("agent")), "empty");
    let mut record = f.volume("data").unwrap();
    record.holders.clear();
    f.iso.ledger.write_volume(&record).unwrap();
    let report = f.iso.recover_exec().unwrap();
    assert_eq!(report.unmounted_volumes, 0);
    assert_eq!(f.driver.mounted_ids("data").len(), 1);
}

#[test]
fn an_agent_container_may_not_take_an_exec_id() {
    let f = Fixture::new();
    let err = f
        .prepare(&Holder::current().unwrap().exec_container_id(), ONE)
        .unwrap_err();
    assert!(matches!(err, IsolatorError::ReservedId { .. }), "{err}");
    assert!(f.driver.calls().is_empty());
}
