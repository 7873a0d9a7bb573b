//! Holders (`dvdcli exec` processes) reaped when dead, inspection, many threads on one
//! volume, volume-root ownership and long volume names.

use super::*;

#[test]
fn dead_holders_are_reaped_and_live_ones_survive_recover() {
    let f = Fixture::new();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = crate::holder::Holder::of_pid(child.id()).unwrap().unwrap();
    child.wait().unwrap();
    let me = crate::holder::Holder::current().unwrap();
    for (id, holder) in [("dead", dead), ("alive", me)] {
        f.iso
            .prepare(
                &cid(id),
                &ContainerConfig {
                    holder: Some(holder),
                    ..f.config(id, &[("DVDI_VOLUME_NAME", id)])
                },
            )
            .unwrap();
    }
    // The agent knows neither: exec containers are governed by their holder process.
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.cleaned_containers, 1);
    assert!(f.driver.mounted_ids("dead").is_empty());
    assert_eq!(f.driver.mounted_ids("alive").len(), 1);
    assert_eq!(f.container_files(), vec!["alive.json"]);
    let report = f.iso.reap_dead_holders().unwrap();
    assert!(report.reaped.is_empty());
}

#[test]
fn reap_dead_holders_cleans_up_what_a_dead_exec_left() {
    let f = Fixture::new();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = crate::holder::Holder::of_pid(child.id()).unwrap().unwrap();
    child.wait().unwrap();
    f.iso
        .prepare(
            &cid("x"),
            &ContainerConfig {
                holder: Some(dead),
                ..f.config("x", ONE)
            },
        )
        .unwrap();
    let report = f.iso.reap_dead_holders().unwrap();
    assert_eq!(report.reaped, vec![cid("x")]);
    assert!(f.driver.mounted_ids("data").is_empty());
}

#[test]
fn inspect_shows_holders_mount_points_and_stuck_unmounts() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap();
    f.prepare("c2", ONE).unwrap();
    f.prepare("c3", &[("DVDI_VOLUME_NAME", "stuck")]).unwrap();
    f.driver
        .fail(Operation::Unmount, "stuck", Failure::Refuse, None);
    f.iso.cleanup(&cid("c3")).unwrap_err();
    let view = f.iso.inspect().unwrap();
    assert_eq!(view.containers.len(), 2);
    assert_eq!(
        view.containers[0].volumes[0].target,
        Some(f.sandbox("c1").join("data"))
    );
    let data = view
        .volumes
        .iter()
        .find(|v| v.name.as_str() == "data")
        .unwrap();
    assert_eq!(data.state, VolumeState::Mounted);
    assert_eq!(data.holders, vec![cid("c1"), cid("c2")]);
    assert_eq!(data.mountpoint, Some(FakeDriver::mountpoint("data")));
    let stuck = view
        .volumes
        .iter()
        .find(|v| v.name.as_str() == "stuck")
        .unwrap();
    assert_eq!(stuck.state, VolumeState::UnmountFailed);
    assert!(stuck.failed_unmounts[0].last_error.contains("refused"));
    assert!(view.problems.is_empty(), "{:?}", view.problems);
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["volumes"][0]["state"], "mounted");
}

#[test]
fn many_threads_sharing_one_volume_mount_it_once_and_unmount_it_once() {
    let f = Arc::new(Fixture::new());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                let id = format!("c{i}");
                f.prepare(
                    &id,
                    &[("DVDI_VOLUME_NAME", "shared"), ("DVDI_VOLUME_NAME1", &id)],
                )
                .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.driver.calls_of("Mount shared").len(), 1);
    assert_eq!(f.volume("shared").unwrap().holders.len(), 8);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f.iso.cleanup(&cid(&format!("c{i}"))).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.driver.calls_of("Unmount shared").len(), 1);
    assert!(f.volume_files().is_empty());
}

#[test]
fn chown_gives_the_volume_root_to_the_task_user_when_enabled() {
    let f = Fixture::with(|c| c.chown_volume_root = true);
    f.iso
        .prepare(
            &cid("c1"),
            &ContainerConfig {
                user: Some("root".into()),
                ..f.config("c1", ONE)
            },
        )
        .unwrap();
    assert!(f.host.calls().contains(&HostCall::Lchown {
        path: FakeDriver::mountpoint("data"),
        uid: 0,
        gid: 0
    }));
    let err = f
        .iso
        .prepare(
            &cid("c2"),
            &ContainerConfig {
                user: Some("no-such-user-dvdi".into()),
                ..f.config("c2", &[("DVDI_VOLUME_NAME", "other")])
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("no-such-user-dvdi"), "{err}");
    assert!(f.driver.mounted_ids("other").is_empty());
    // Off by default.
    let g = Fixture::new();
    g.iso
        .prepare(
            &cid("c1"),
            &ContainerConfig {
                user: Some("root".into()),
                ..g.config("c1", ONE)
            },
        )
        .unwrap();
    assert!(!g
        .host
        .calls()
        .iter()
        .any(|c| matches!(c, HostCall::Lchown { .. })));
}

#[test]
fn long_volume_names_use_hash_named_records() {
    let f = Fixture::new();
    let long = "ü".repeat(120);
    f.prepare("c1", &[("DVDI_VOLUME_NAME", &long)]).unwrap();
    let files = f.volume_files();
    assert!(files[0].contains('~') && files[0].len() <= 255, "{files:?}");
    assert_eq!(f.iso.inspect().unwrap().volumes[0].name.as_str(), long);
    f.iso.cleanup(&cid("c1")).unwrap();
    assert!(f.driver.mounted_ids(&long).is_empty());
}
