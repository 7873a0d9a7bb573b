//! Recover after an agent restart: known containers and orphans kept, unknown ones cleaned
//! up, damaged or lost records handled conservatively, uncertain mounts settled.

use super::*;

#[test]
fn recover_keeps_running_containers_and_known_orphans() {
    for (known, orphans) in [(vec![cid("c1")], vec![]), (vec![], vec![cid("c1")])] {
        let (f, _) = prepared();
        let iso = f.restart();
        let report = iso.recover(&known, &orphans).unwrap();
        assert_eq!(report.kept_containers, 1);
        assert_eq!(report.unmounted_volumes, 0);
        assert!(f.driver.calls_of("Unmount").is_empty());
        assert_eq!(
            f.volume("data").unwrap().holders,
            BTreeSet::from([cid("c1")])
        );
        // Its cleanup comes later and releases everything.
        iso.cleanup(&cid("c1")).unwrap();
        assert!(f.driver.mounted_ids("data").is_empty());
        assert!(f.volume_files().is_empty());
    }
}

#[test]
fn recover_cleans_up_containers_the_agent_does_not_know() {
    let (f, id) = prepared();
    let report = f.restart().recover(&[cid("someone-else")], &[]).unwrap();
    assert_eq!(report.cleaned_containers, 1);
    assert_eq!(report.unmounted_volumes, 2);
    assert!(f
        .driver
        .calls_of("Unmount data")
        .contains(&format!("Unmount data {id}")));
    assert!(f.container_files().is_empty());
    assert!(f.volume_files().is_empty());
}

fn damage(f: &Fixture, content: &[u8]) {
    let path = f.checkpoint().join("containers/c1.json");
    let full = std::fs::read(&path).unwrap();
    let bytes = if content == b"TRUNCATE" {
        full[..full.len() / 2].to_vec()
    } else {
        content.to_vec()
    };
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_damaged_record_of_a_known_container_keeps_its_mounts() {
    for content in [&b"TRUNCATE"[..], b"", b"\0\0\0garbage"] {
        let (f, _) = prepared();
        damage(&f, content);
        let iso = f.restart();
        let report = iso.recover(&[cid("c1")], &[]).unwrap();
        assert_eq!(report.corrupt_records, 1);
        assert_eq!(report.kept_containers, 1);
        assert!(f.driver.calls_of("Unmount").is_empty(), "{content:?}");
        assert_eq!(f.container_files(), vec!["c1.json.corrupt"]);
        assert!(
            report.messages.iter().any(|m| m.contains("c1.json")),
            "{:?}",
            report.messages
        );
        // The agent's later cleanup releases what was attributed to it.
        iso.cleanup(&cid("c1")).unwrap();
        assert!(f.driver.mounted_ids("data").is_empty());
        assert!(f.driver.mounted_ids("other").is_empty());
        assert!(f.volume_files().is_empty());
    }
}

#[test]
fn a_damaged_record_of_an_unknown_container_releases_its_mounts() {
    for content in [&b"TRUNCATE"[..], b""] {
        let (f, _) = prepared();
        damage(&f, content);
        let report = f.restart().recover(&[], &[]).unwrap();
        assert_eq!(report.corrupt_records, 1);
        assert_eq!(report.unmounted_volumes, 2);
        assert!(f.driver.mounted_ids("data").is_empty());
        assert!(f.volume_files().is_empty());
    }
}

#[test]
fn a_mount_with_no_holder_is_unmounted_whatever_its_state() {
    for state in [
        MountState::Mounting,
        MountState::Mounted,
        MountState::Unmounting,
    ] {
        let (f, id) = prepared();
        // As if the process died inside cleanup (or inside a prepare that never finished).
        let ledger = crate::ledger::Ledger::open(f.checkpoint()).unwrap();
        let mut rec = ledger.read_volume(&key("data")).unwrap().unwrap();
        rec.holders.clear();
        rec.mount.as_mut().unwrap().state = state;
        ledger.write_volume(&rec).unwrap();
        ledger.remove_container(&cid("c1")).unwrap();
        let report = f.restart().recover(&[], &[]).unwrap();
        assert!(
            f.driver
                .calls_of("Unmount data")
                .contains(&format!("Unmount data {id}")),
            "{state:?}"
        );
        // `other` lost its only holder with the container record: unmounted too.
        assert_eq!(report.unmounted_volumes, 2, "{state:?}: {report:?}");
        assert!(f.volume("data").is_none());
    }
}

/// Regression (crash matrix): a process killed after writing `mounting` but before sending
/// Mount, or after Unmount succeeded but before recording it, leaves a mount id the driver
/// does not hold. Its Unmount is refused; that must not become a failed unmount retried
/// forever. A refused Unmount of a mount recorded `mounted` is still remembered.
#[test]
fn a_refused_unmount_of_an_uncertain_mount_is_forgotten_not_retried_forever() {
    for (state, remembered) in [
        (MountState::Mounting, false),
        (MountState::Unmounting, false),
        (MountState::Mounted, true),
    ] {
        let (f, id) = prepared();
        let ledger = crate::ledger::Ledger::open(f.checkpoint()).unwrap();
        let mut rec = ledger.read_volume(&key("data")).unwrap().unwrap();
        rec.holders.clear();
        rec.mount.as_mut().unwrap().state = state;
        ledger.write_volume(&rec).unwrap();
        ledger.remove_container(&cid("c1")).unwrap();
        f.driver
            .fail(Operation::Unmount, "data", Failure::Refuse, None);
        let report = f.restart().recover(&[], &[]).unwrap();
        assert!(
            f.driver
                .calls_of("Unmount data")
                .contains(&format!("Unmount data {id}")),
            "{state:?}"
        );
        let failed = f.volume("data").map(|r| r.failed_unmounts.len());
        if remembered {
            assert_eq!(failed, Some(1), "{state:?}: {report:?}");
        } else {
            assert_eq!(failed, None, "{state:?}: {report:?}");
            assert_eq!(report.failed_unmounts, 0, "{state:?}: {report:?}");
            assert!(f.logged("forgotten"), "{state:?}");
        }
    }
}

/// A timed-out Unmount of an uncertain mount proves nothing: it is remembered for retry.
#[test]
fn an_unanswered_unmount_of_an_uncertain_mount_is_remembered() {
    let (f, id) = prepared();
    let ledger = crate::ledger::Ledger::open(f.checkpoint()).unwrap();
    let mut rec = ledger.read_volume(&key("data")).unwrap().unwrap();
    rec.holders.clear();
    rec.mount.as_mut().unwrap().state = MountState::Mounting;
    ledger.write_volume(&rec).unwrap();
    ledger.remove_container(&cid("c1")).unwrap();
    f.driver
        .fail(Operation::Unmount, "data", Failure::Timeout, None);
    f.restart().recover(&[], &[]).unwrap();
    let rec = f.volume("data").unwrap();
    assert_eq!(rec.failed_unmounts[0].mount_id, id);
}

#[test]
fn a_crash_inside_cleanup_is_finished_by_recover_even_for_a_known_id() {
    let (f, id) = prepared();
    let ledger = crate::ledger::Ledger::open(f.checkpoint()).unwrap();
    let mut rec = ledger.read_container(&cid("c1")).unwrap().unwrap();
    rec.state = ContainerState::Cleaning;
    ledger.write_container(&rec).unwrap();
    let report = f.restart().recover(&[cid("c1")], &[]).unwrap();
    assert_eq!(report.cleaned_containers, 1);
    assert!(f
        .driver
        .calls_of("Unmount data")
        .contains(&format!("Unmount data {id}")));
    assert!(f.volume_files().is_empty());
}

#[test]
fn recover_repairs_the_holders_cache_from_the_container_records() {
    let (f, _) = prepared();
    let ledger = crate::ledger::Ledger::open(f.checkpoint()).unwrap();
    let mut rec = ledger.read_volume(&key("data")).unwrap().unwrap();
    rec.holders = BTreeSet::from([cid("ghost")]);
    ledger.write_volume(&rec).unwrap();
    let report = f.restart().recover(&[cid("c1")], &[]).unwrap();
    assert!(f.driver.calls_of("Unmount").is_empty());
    assert_eq!(
        f.volume("data").unwrap().holders,
        BTreeSet::from([cid("c1")])
    );
    assert!(report.messages.iter().any(|m| m.contains("ghost")));
}

#[test]
fn a_lost_volume_record_is_rebuilt_from_its_live_container() {
    let (f, id) = prepared();
    std::fs::remove_file(f.checkpoint().join("volumes/fake/data.json")).unwrap();
    let iso = f.restart();
    iso.recover(&[cid("c1")], &[]).unwrap();
    assert_eq!(f.volume("data").unwrap().mount.unwrap().id, id);
    iso.cleanup(&cid("c1")).unwrap();
    assert!(f.driver.mounted_ids("data").is_empty());
}

#[test]
fn a_corrupt_volume_record_is_rebuilt_with_its_mount_id() {
    let (f, id) = prepared();
    std::fs::write(
        f.checkpoint().join("volumes/fake/data.json"),
        b"{\"format\":1,",
    )
    .unwrap();
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.corrupt_records, 1);
    assert!(f
        .driver
        .calls_of("Unmount data")
        .contains(&format!("Unmount data {id}")));
    assert!(f.driver.mounted_ids("data").is_empty());
}

#[test]
fn recover_retries_failed_unmounts() {
    let (f, id) = prepared();
    f.driver
        .fail(Operation::Unmount, "data", Failure::Refuse, Some(1));
    f.iso.cleanup(&cid("c1")).unwrap_err();
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.retried_unmounts, 1);
    assert_eq!(f.driver.calls_of(&format!("Unmount data {id}")).len(), 2);
    assert!(f.volume_files().is_empty());
}

#[test]
fn stale_temp_files_are_removed_by_recover() {
    let (f, _) = prepared();
    // A temp file of a writer that is gone (the older name form), and one of a live one.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(
        f.checkpoint().join(format!("containers/.tmp-{dead}-1")),
        b"{",
    )
    .unwrap();
    let live = format!(".tmp-{}-0", std::process::id());
    std::fs::write(f.checkpoint().join("containers").join(&live), b"{").unwrap();
    let report = f.restart().recover(&[cid("c1")], &[]).unwrap();
    assert!(report.messages.iter().any(|m| m.contains("1 temp file")));
    assert_eq!(f.container_files(), vec!["c1.json"]);
    assert!(f.checkpoint().join("containers").join(live).exists());
}
