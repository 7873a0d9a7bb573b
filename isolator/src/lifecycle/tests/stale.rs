//! A mount the ledger records as there, gone behind its back (an operator's unmount, a plugin
//! restart, a lazy unmount): a prepare that would share it mounts anew instead of binding the
//! bare mount-point directory (issue 10, finding 2).

use std::collections::BTreeSet;

use super::fake::FakeDriver;
use super::{cid, mount_id_of, Fixture, ONE};

#[test]
fn a_vanished_mount_is_mounted_anew_not_shared() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap().unwrap();
    let first = f.driver.calls_of("Mount data");
    assert_eq!(first.len(), 1, "{first:?}");
    let first_id = mount_id_of(&first[0]);

    f.host.vanish(&FakeDriver::mountpoint("data"));
    let info = f.prepare("c2", ONE).unwrap().unwrap();

    // The gone mount was unmounted with its id, and a fresh Mount made and recorded.
    let mounts = f.driver.calls_of("Mount data");
    assert_eq!(mounts.len(), 2, "{:?}", f.driver.calls());
    let second_id = mount_id_of(&mounts[1]);
    assert_ne!(first_id, second_id);
    assert_eq!(
        f.driver.calls_of("Unmount data"),
        vec![format!("Unmount data {first_id}")]
    );
    assert!(f.logged("is gone"), "the repair is logged");
    let record = f.volume("data").unwrap();
    assert_eq!(
        record.mount.as_ref().map(|m| m.id.clone()),
        Some(second_id.clone())
    );
    assert_eq!(record.holders, BTreeSet::from([cid("c1"), cid("c2")]));
    assert_eq!(info.mounts[0].source, FakeDriver::mountpoint("data"));

    // Both holders keep the new mount until the last one leaves.
    f.iso.cleanup(&cid("c1")).unwrap();
    assert_eq!(f.driver.calls_of("Unmount data").len(), 1);
    f.iso.cleanup(&cid("c2")).unwrap();
    assert_eq!(
        f.driver.calls_of("Unmount data").last().cloned(),
        Some(format!("Unmount data {second_id}"))
    );
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.volume("data").is_none());
}

#[test]
fn a_mount_still_there_is_shared_without_a_driver_call() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap().unwrap();
    let calls = f.driver.calls().len();
    f.prepare("c2", ONE).unwrap().unwrap();
    assert_eq!(f.driver.calls().len(), calls, "{:?}", f.driver.calls());
}
