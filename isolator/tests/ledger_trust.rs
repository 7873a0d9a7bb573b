//! Records owned by another user than root are never trusted (root): reads refuse them naming
//! the path and the owner, a checkpoint directory owned by someone else is refused at open,
//! and recover handles such a record like a corrupt one.

mod common;

use std::os::unix::fs::chown;

use common::{cid, require_root, World};
use dvdi::ledger::{Ledger, LedgerError};

const NOBODY: u32 = 65534;

const ENV: &[(&str, &str)] = &[
    ("DVDI_VOLUME_DRIVER", "local"),
    ("DVDI_VOLUME_NAME", "trust-data"),
    ("DVDI_VOLUME_CONTAINERPATH", "data"),
];

#[test]
fn a_record_owned_by_another_user_is_not_trusted() {
    if !require_root("a_record_owned_by_another_user_is_not_trusted") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    iso.prepare(&cid("c1"), &world.config("c1", ENV)).unwrap();
    let record = world.checkpoint().join("containers/c1.json");
    chown(&record, Some(NOBODY), None).unwrap();

    let ledger = Ledger::open(world.checkpoint()).unwrap();
    let err = ledger.read_container(&cid("c1")).unwrap_err();
    assert!(matches!(err, LedgerError::Untrusted { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("containers/c1.json"), "{text}");
    assert!(
        text.contains(&format!("owned by uid {NOBODY}, not by root")),
        "{text}"
    );

    // Recover (the agent still runs c1): set aside, never read, never fatal; c1 keeps the
    // volume until its cleanup.
    let report = world.isolator().recover(&[cid("c1")], &[]).unwrap();
    assert_eq!(report.corrupt_records, 1, "{report:?}");
    assert_eq!(report.kept_containers, 1, "{report:?}");
    assert!(world
        .checkpoint()
        .join("containers/c1.json.corrupt")
        .exists());
    iso.cleanup(&cid("c1")).unwrap();
    assert!(ledger.list_volumes().unwrap().is_empty());
}

#[test]
fn a_checkpoint_dir_owned_by_another_user_is_refused() {
    if !require_root("a_checkpoint_dir_owned_by_another_user_is_refused") {
        return;
    }
    let world = World::new();
    Ledger::open(world.checkpoint()).unwrap();
    for dir in ["", "volumes"] {
        let path = world.checkpoint().join(dir);
        chown(&path, Some(NOBODY), None).unwrap();
        let err = Ledger::open(world.checkpoint()).unwrap_err();
        assert!(matches!(err, LedgerError::Untrusted { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("owned by uid {NOBODY}")),
            "{err}"
        );
        chown(&path, Some(0), None).unwrap();
    }
    // A driver directory of someone else's: its records are refused, nothing written into it.
    let iso = world.isolator();
    iso.prepare(&cid("c1"), &world.config("c1", ENV)).unwrap();
    chown(world.checkpoint().join("volumes/local"), Some(NOBODY), None).unwrap();
    let err = iso
        .prepare(&cid("c2"), &world.config("c2", ENV))
        .unwrap_err();
    assert!(err.to_string().contains("volumes/local"), "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");
}
