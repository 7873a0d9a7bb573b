//! What `Isolator::metrics` counts: prepares that asked for volumes, cleanups of containers
//! that held volumes (by an unreadable record too), every failure; gauges from the records.

use super::*;

fn counts(iso: &Isolator) -> (u64, u64, u64, u64) {
    let m = iso.metrics();
    (
        m.prepares,
        m.prepare_failures,
        m.cleanups,
        m.cleanup_failures,
    )
}

#[test]
fn a_cleanup_counts_when_the_container_held_volumes_even_by_an_unreadable_record() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap();
    f.prepare("c2", &[("DVDI_VOLUME_NAME", "two")]).unwrap();
    assert_eq!(f.prepare("none", &[("HOME", "/root")]).unwrap(), None);
    assert_eq!(counts(&f.iso), (2, 0, 0, 0));

    f.iso.cleanup(&cid("unknown")).unwrap();
    f.iso.cleanup(&cid("c1")).unwrap();
    assert_eq!(counts(&f.iso), (2, 0, 1, 0));

    // c2's record is damaged: its cleanup still releases what names it, and counts.
    std::fs::write(f.checkpoint().join("containers/c2.json"), b"{").unwrap();
    f.iso.cleanup(&cid("c2")).unwrap();
    assert_eq!(counts(&f.iso), (2, 0, 2, 0));
    let m = f.iso.metrics();
    assert_eq!((m.cleanup_time.count, m.prepare_time.count), (2, 2));
    assert_eq!(m.volumes.map(|v| v.mounted), Some(0));
}

#[test]
fn failures_count_and_a_failed_unmount_waits_until_a_prepare_of_the_volume_retries_it() {
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "data", Failure::Refuse, Some(1));
    assert!(f.prepare("c1", ONE).is_err());
    assert_eq!(counts(&f.iso), (1, 1, 0, 0));

    f.prepare("c2", ONE).unwrap();
    f.driver
        .fail(Operation::Unmount, "data", Failure::Refuse, Some(1));
    assert!(f.iso.cleanup(&cid("c2")).is_err());
    assert_eq!(counts(&f.iso), (2, 1, 1, 1));
    let gauges = f.iso.metrics().volumes.unwrap();
    assert_eq!((gauges.mounted, gauges.unmounts_pending_retry), (0, 1));

    // The next prepare of the volume retries the Unmount first, then mounts anew.
    f.prepare("c3", ONE).unwrap();
    let gauges = f.iso.metrics().volumes.unwrap();
    assert_eq!((gauges.mounted, gauges.unmounts_pending_retry), (1, 0));
}

#[test]
fn recovers_count_and_the_gauges_of_a_restarted_isolator_come_from_the_records() {
    let (f, _) = prepared();
    let again = f.restart();
    let m = again.metrics();
    assert_eq!((m.prepares, m.recovers), (0, 0));
    assert_eq!(m.volumes.map(|v| v.mounted), Some(2));
    again.recover(&[], &[]).unwrap();
    let m = again.metrics();
    assert_eq!((m.recovers, m.recover_failures), (1, 0));
    assert_eq!(m.volumes.map(|v| v.mounted), Some(0));

    // No checkpoint directory to list: recover fails and counts; the gauges are unknown.
    std::fs::remove_dir_all(f.checkpoint()).unwrap();
    assert!(again.recover(&[], &[]).is_err());
    let m = again.metrics();
    assert_eq!((m.recovers, m.recover_failures), (2, 1));
    assert_eq!(m.volumes, None);
}
