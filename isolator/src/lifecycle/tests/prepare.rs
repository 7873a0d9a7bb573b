//! Prepare and cleanup: mounting, sharing, explicit create, rollback of a failed prepare,
//! unmounts that fail or get no answer, and what is refused before anything happens.

use super::*;

#[test]
fn no_dvdi_variables_means_no_launch_info_and_nothing_written() {
    let f = Fixture::new();
    assert_eq!(f.prepare("c1", &[("PATH", "/bin")]).unwrap(), None);
    // Variables but no volume (a slot without a name): also nothing, with a warning.
    assert_eq!(
        f.prepare("c2", &[("DVDI_VOLUME_DRIVER", "fake")]).unwrap(),
        None
    );
    assert!(f.container_files().is_empty());
    assert!(f.driver.calls().is_empty());
    assert!(f.logged("c2"));
}

#[test]
fn prepare_mounts_and_returns_one_bind_per_container_path() {
    let f = Fixture::new();
    let info = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", "sub/data"),
                ("DVDI_VOLUME_OPTS", "size=5"),
                ("DVDI_VOLUME_NAME1", "logs"),
                ("DVDI_VOLUME_CONTAINERPATH1", "logs"),
                ("DVDI_VOLUME_READONLY1", "true"),
                ("DVDI_VOLUME_NAME2", "nopath"),
            ],
        )
        .unwrap()
        .unwrap();
    assert!(info.clone_newns);
    let sandbox = f.sandbox("c1");
    // Shallow targets first; read-only gets its remount right after its bind.
    assert_eq!(
        info.mounts,
        vec![
            LaunchMount {
                source: FakeDriver::mountpoint("logs"),
                target: sandbox.join("logs"),
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            },
            LaunchMount {
                source: FakeDriver::mountpoint("logs"),
                target: sandbox.join("logs"),
                flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            },
            LaunchMount {
                source: FakeDriver::mountpoint("data"),
                target: sandbox.join("sub/data"),
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            },
        ]
    );
    assert!(sandbox.join("sub/data").is_dir() && sandbox.join("logs").is_dir());
    // Activate, Get, Create with options (the volume was missing), Mount.
    assert_eq!(f.driver.calls_of("Create data"), vec!["Create data size=5"]);
    assert_eq!(f.driver.calls_of("Mount").len(), 3);
    assert_eq!(f.driver.mounted_ids("nopath").len(), 1);
    // The ledger: a prepared container record and three mounted volume records.
    let record = crate::ledger::Ledger::open(f.checkpoint())
        .unwrap()
        .read_container(&cid("c1"))
        .unwrap()
        .unwrap();
    assert_eq!(record.state, ContainerState::Prepared);
    assert!(record.volumes.iter().all(|u| u.mount_id.is_some()));
    let data = f.volume("data").unwrap();
    assert_eq!(data.state(), VolumeState::Mounted);
    assert_eq!(data.holders, BTreeSet::from([cid("c1")]));
    assert_eq!(
        data.mount.unwrap().id,
        mount_id_of(&f.driver.calls_of("Mount data")[0])
    );
}

#[test]
fn a_read_only_volume_without_container_path_is_bound_read_only_onto_itself() {
    let f = Fixture::new();
    let info = f
        .prepare(
            "c1",
            &[("DVDI_VOLUME_NAME", "ro"), ("DVDI_VOLUME_READONLY", "true")],
        )
        .unwrap()
        .unwrap();
    let mp = FakeDriver::mountpoint("ro");
    assert_eq!(
        info.mounts,
        vec![
            LaunchMount {
                source: mp.clone(),
                target: mp.clone(),
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            },
            LaunchMount {
                source: mp.clone(),
                target: mp,
                flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            },
        ]
    );
}

#[test]
fn the_isolator_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Isolator>();
}

#[test]
fn explicit_create_never_creates() {
    let f = Fixture::new();
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_EXPLICITCREATE", "true"),
            ],
        )
        .unwrap_err();
    assert!(err.to_string().contains("explicit create"), "{err}");
    assert!(f.driver.calls_of("Create").is_empty());
    f.driver.add_volume("data");
    f.prepare(
        "c2",
        &[
            ("DVDI_VOLUME_NAME", "data"),
            ("DVDI_VOLUME_EXPLICITCREATE", "true"),
        ],
    )
    .unwrap();
    assert!(f.driver.calls_of("Create").is_empty());
    assert_eq!(f.driver.mounted_ids("data").len(), 1);
}

#[test]
fn a_volume_seen_before_is_mounted_without_get_unless_it_is_gone_or_explicit() {
    let f = Fixture::new();
    let since = |n: usize| f.driver.calls()[n..].to_vec();
    // First time: is it there? No: Create, then Mount.
    f.prepare("c1", ONE).unwrap();
    let id1 = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    assert_eq!(
        since(0),
        [
            "Activate",
            "Get data",
            "Create data",
            &format!("Mount data {id1}")
        ]
    );
    f.iso.cleanup(&cid("c1")).unwrap();

    // Seen by this handle: Mount straight away.
    let n = f.driver.calls().len();
    f.prepare("c2", ONE).unwrap();
    let id2 = mount_id_of(&f.driver.calls_of("Mount data")[1]);
    assert_eq!(since(n), ["Activate", &format!("Mount data {id2}")]);
    f.iso.cleanup(&cid("c2")).unwrap();

    // Removed behind our back: the Mount is refused (nothing mounted), then the full
    // sequence runs with the same id.
    crate::driver::VolumeDriver::remove(
        f.driver.as_ref(),
        &crate::names::VolumeName::new("data").unwrap(),
    )
    .unwrap();
    let n = f.driver.calls().len();
    f.prepare("c3", ONE).unwrap();
    let calls = since(n);
    let id3 = mount_id_of(&calls[1]);
    assert_eq!(
        calls,
        [
            "Activate".to_owned(),
            format!("Mount data {id3}"),
            "Activate".into(),
            "Get data".into(),
            "Create data".into(),
            format!("Mount data {id3}"),
        ]
    );
    assert!(f.logged("refused"), "{:?}", f.logs.lock().unwrap());
    assert_eq!(f.driver.mounted_ids("data"), [id3.clone()].into());
    f.iso.cleanup(&cid("c3")).unwrap();
    let n = f.driver.calls().len() + 1; // after the test's own Remove

    // Explicit creation is a check the container asked for: always a Get.
    let n = n - 1;
    f.prepare(
        "c4",
        &[
            ("DVDI_VOLUME_NAME", "data"),
            ("DVDI_VOLUME_EXPLICITCREATE", "true"),
        ],
    )
    .unwrap();
    let id4 = mount_id_of(&f.driver.calls_of("Mount data").pop().unwrap());
    assert_eq!(
        since(n),
        ["Activate", "Get data", &format!("Mount data {id4}")]
    );
    // A fresh handle (the agent restarted) has seen nothing yet.
    f.iso.cleanup(&cid("c4")).unwrap();
    let iso = f.restart();
    let n = f.driver.calls().len();
    iso.prepare(&cid("c5"), &f.config("c5", ONE)).unwrap();
    assert_eq!(since(n)[..2], ["Activate", "Get data"]);
}

#[test]
fn two_containers_share_one_mount_and_the_last_one_unmounts_it() {
    let f = Fixture::new();
    let a = f.prepare("c1", ONE).unwrap().unwrap();
    let b = f.prepare("c2", ONE).unwrap().unwrap();
    assert_eq!(a.mounts[0].source, b.mounts[0].source);
    let mounts = f.driver.calls_of("Mount data");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        f.volume("data").unwrap().holders,
        BTreeSet::from([cid("c1"), cid("c2")])
    );

    f.iso.cleanup(&cid("c1")).unwrap();
    assert!(f.driver.calls_of("Unmount").is_empty());
    assert_eq!(
        f.volume("data").unwrap().holders,
        BTreeSet::from([cid("c2")])
    );

    f.iso.cleanup(&cid("c2")).unwrap();
    // One Unmount, with the id of the one Mount.
    assert_eq!(
        f.driver.calls_of("Unmount data"),
        vec![format!("Unmount data {}", mount_id_of(&mounts[0]))]
    );
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.volume_files().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn a_failure_on_the_second_volume_releases_the_first() {
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "second", Failure::Refuse, None);
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "first"),
                ("DVDI_VOLUME_NAME1", "second"),
            ],
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"second\"") && text.contains("driver fake"),
        "{text}"
    );
    assert!(matches!(err, IsolatorError::Mount { .. }), "{err:?}");
    // The first volume was mounted, then unmounted with the same id.
    let mount = mount_id_of(&f.driver.calls_of("Mount first")[0]);
    assert_eq!(
        f.driver.calls_of("Unmount first"),
        vec![format!("Unmount first {mount}")]
    );
    // A refused Mount did not mount: no Unmount for it.
    assert!(f.driver.calls_of("Unmount second").is_empty());
    assert!(f.driver.mounted_ids("first").is_empty());
    assert!(f.container_files().is_empty());
    assert!(f.volume_files().is_empty());
}

#[test]
fn rollback_keeps_a_shared_volume_mounted_for_its_other_holder() {
    let f = Fixture::new();
    f.prepare("c1", &[("DVDI_VOLUME_NAME", "shared")]).unwrap();
    f.driver
        .fail(Operation::Mount, "bad", Failure::Refuse, None);
    f.prepare(
        "c2",
        &[("DVDI_VOLUME_NAME", "shared"), ("DVDI_VOLUME_NAME1", "bad")],
    )
    .unwrap_err();
    assert!(f.driver.calls_of("Unmount").is_empty());
    assert_eq!(
        f.volume("shared").unwrap().holders,
        BTreeSet::from([cid("c1")])
    );
}

#[test]
fn a_failed_rollback_is_reported_with_the_primary_error_and_remembered() {
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "second", Failure::Refuse, None);
    f.driver
        .fail(Operation::Unmount, "first", Failure::Refuse, Some(1));
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "first"),
                ("DVDI_VOLUME_NAME1", "second"),
            ],
        )
        .unwrap_err();
    let IsolatorError::Rollback { primary, rollback } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(**primary, IsolatorError::Mount { .. }));
    assert!(matches!(rollback[..], [IsolatorError::Unmount { .. }]));
    let text = err.to_string();
    assert!(
        text.contains("\"second\"") && text.contains("\"first\""),
        "{text}"
    );
    // Remembered for retry, held by nobody, and the container is gone.
    let first = f.volume("first").unwrap();
    assert_eq!(first.state(), VolumeState::UnmountFailed);
    assert!(first.holders.is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn a_mount_that_timed_out_is_unmounted_with_its_id() {
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "data", Failure::Timeout, Some(1));
    let err = f.prepare("c1", ONE).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    let mount = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    assert_eq!(
        f.driver.calls_of("Unmount data"),
        vec![format!("Unmount data {mount}")]
    );
    assert!(f.volume_files().is_empty());
}

/// A Mount that never reached the driver (nothing listening) mounted nothing: its id is
/// forgotten, with no Unmount and nothing remembered for retry.
#[test]
fn a_mount_that_never_reached_the_driver_is_forgotten_not_unmounted() {
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "data", Failure::Unreachable, Some(1));
    let err = f.prepare("c1", ONE).unwrap_err();
    assert!(err.to_string().contains("never reached"), "{err}");
    assert!(f.driver.calls_of("Unmount").is_empty());
    assert!(f.volume_files().is_empty());
    f.prepare("c1", ONE).unwrap();
}

/// A Mount with no answer may still be running in the plugin, so a refusal of the rollback
/// Unmount right away proves nothing: it is remembered. Refused again by a later retry, it is
/// forgotten, not retried forever (plugin fault matrix: hang, cut reply, malformed reply).
#[test]
fn a_refused_unmount_after_an_unanswered_mount_is_retried_once_then_forgotten() {
    // Forgotten once the Mount can no longer land: twice its deadline after it got no answer.
    let f = Fixture::with(|c| c.settings.client.timeouts.mount = Duration::from_millis(30));
    f.driver
        .fail(Operation::Mount, "data", Failure::Timeout, Some(1));
    f.driver
        .fail(Operation::Unmount, "data", Failure::Refuse, None);
    f.prepare("c1", ONE).unwrap_err();
    let rec = f.volume("data").unwrap();
    assert!(rec.holders.is_empty());
    assert!(rec.failed_unmounts[0].uncertain, "{rec:?}");
    std::thread::sleep(Duration::from_millis(80));
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.failed_unmounts, 0, "{report:?}");
    assert!(f.volume_files().is_empty());
    assert_eq!(f.driver.calls_of("Unmount data").len(), 2);
}

#[test]
fn a_refused_unmount_is_kept_while_a_timed_out_mount_may_still_land() {
    // Found by the concurrency model: the plugin's Mount outlived the deadline, the rollback
    // Unmount and a quick retry were both refused (not mounted yet), the id was forgotten, and
    // the Mount then landed: a mount nobody would ever unmount.
    let f = Fixture::new();
    f.driver
        .fail(Operation::Mount, "data", Failure::Timeout, Some(1));
    f.driver
        .fail(Operation::Unmount, "data", Failure::Refuse, Some(2));
    f.prepare("c1", ONE).unwrap_err();
    let id = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.failed_unmounts, 1, "kept: {report:?}");
    let rec = f.volume("data").unwrap();
    assert!(
        rec.failed_unmounts[0].mount_may_land_until_ms.is_some(),
        "{rec:?}"
    );
    // The late Mount lands in the plugin; the next retry unmounts it with its id.
    use crate::driver::VolumeDriver as _;
    f.driver
        .mount(&VolumeName::new("data").unwrap(), &id)
        .unwrap();
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.retried_unmounts, 1, "{report:?}");
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.volume_files().is_empty());
}

#[test]
fn a_failed_unmount_does_not_pin_the_volume() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap();
    let first_id = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    f.driver
        .fail(Operation::Unmount, "data", Failure::Refuse, Some(1));
    let err = f.iso.cleanup(&cid("c1")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"data\"") && text.contains("driver fake"),
        "{text}"
    );
    assert!(text.contains(&first_id), "{text}");
    // Zero holders, the failure remembered, the container gone.
    let rec = f.volume("data").unwrap();
    assert!(rec.holders.is_empty());
    assert_eq!(rec.failed_unmounts[0].mount_id, first_id);
    assert!(f.container_files().is_empty());
    // The next prepare retries the old Unmount first, then mounts anew.
    f.prepare("c2", ONE).unwrap();
    let calls = f.driver.calls();
    let retry = calls
        .iter()
        .rposition(|c| *c == format!("Unmount data {first_id}"))
        .unwrap();
    let mount = calls
        .iter()
        .rposition(|c| c.starts_with("Mount data"))
        .unwrap();
    assert!(retry < mount, "{calls:?}");
    assert!(f.volume("data").unwrap().failed_unmounts.is_empty());
    // And the next cleanup really unmounts the new mount.
    f.iso.cleanup(&cid("c2")).unwrap();
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.volume_files().is_empty());
}

#[test]
fn cleanup_of_an_unknown_container_is_fine() {
    let f = Fixture::new();
    f.iso.cleanup(&cid("never-seen")).unwrap();
    assert!(f.driver.calls().is_empty());
}

#[test]
fn preparing_a_container_twice_is_refused_without_side_effects() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap();
    let before = f.driver.calls().len();
    let err = f.prepare("c1", ONE).unwrap_err();
    assert!(
        matches!(err, IsolatorError::AlreadyPrepared { .. }),
        "{err}"
    );
    assert_eq!(f.driver.calls().len(), before);
}

#[test]
fn disallowed_drivers_are_refused_before_anything_happens() {
    let f = Fixture::with(|c| {
        c.allowed_drivers = Some(BTreeSet::from([DriverName::new("rexray").unwrap()]))
    });
    let err = f.prepare("c1", ONE).unwrap_err();
    assert!(
        matches!(err, IsolatorError::DriverNotAllowed { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rexray"), "{err}");
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn an_undiscoverable_plugin_is_refused_before_anything_happens() {
    let f = Fixture::with(|c| {
        c.settings.client.plugin_dirs = vec![PathBuf::from("/nonexistent-dvdi-test")];
    });
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "a"),
                ("DVDI_VOLUME_NAME1", "b"),
                ("DVDI_VOLUME_DRIVER1", "nosuchplugin"),
            ],
        )
        .unwrap_err();
    assert!(matches!(err, IsolatorError::Resolve { .. }), "{err}");
    assert!(err.to_string().contains("nosuchplugin"), "{err}");
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn grammar_errors_name_the_container_and_the_variable() {
    let f = Fixture::new();
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "a"),
                ("DVDI_VOLUME_CONTAINERPATH", "../../etc"),
            ],
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("c1") && text.contains("DVDI_VOLUME_CONTAINERPATH"),
        "{text}"
    );
    assert!(f.driver.calls().is_empty());
}
