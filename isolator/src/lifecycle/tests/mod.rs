//! Unit tests of the lifecycle logic: a recording host and an in-memory driver, a real ledger
//! in a temp dir, real directories (and planted symlinks) for container paths.

mod fake;
mod policy;
mod repair;
mod stale;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake::{Failure, FakeDriver};

use super::*;
use crate::driver::Operation;
use crate::launch::LaunchMount;
use crate::ledger::{ContainerState, MountState, VolumeKey, VolumeState};
use crate::names::VolumeName;
use crate::sys::{HostCall, MsFlags, RecordingHost};

struct Fixture {
    tmp: tempfile::TempDir,
    host: Arc<RecordingHost>,
    driver: Arc<FakeDriver>,
    logs: Arc<Mutex<Vec<String>>>,
    iso: Isolator,
}

fn cid(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

fn key(name: &str) -> VolumeKey {
    VolumeKey::new(
        DriverName::new("fake").unwrap(),
        VolumeName::new(name).unwrap(),
    )
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut IsolatorConfig)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let host = Arc::new(RecordingHost::new());
        let driver = Arc::new(FakeDriver::new("fake"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut config = IsolatorConfig {
            checkpoint_dir: tmp.path().join("checkpoint"),
            default_driver: DriverName::new("fake").unwrap(),
            ..IsolatorConfig::default()
        };
        let sink = logs.clone();
        config.log = Logger::new(move |_, m| sink.lock().unwrap().push(m.to_owned()));
        tweak(&mut config);
        let iso = Self::isolator(&config, &host, &driver);
        Self {
            tmp,
            host,
            driver,
            logs,
            iso,
        }
    }

    fn isolator(
        config: &IsolatorConfig,
        host: &Arc<RecordingHost>,
        driver: &Arc<FakeDriver>,
    ) -> Isolator {
        let resolver = DriverResolver::with_host(Settings::default(), host.clone())
            .with_driver(driver.clone());
        Isolator::new(config.clone(), resolver, host.clone()).unwrap()
    }

    /// A second isolator over the same checkpoint and the same "plugin": an agent restart.
    fn restart(&self) -> Isolator {
        Self::isolator(self.iso.config(), &self.host, &self.driver)
    }

    fn sandbox(&self, id: &str) -> PathBuf {
        let dir = self.tmp.path().join("sandboxes").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(&self, id: &str, env: &[(&str, &str)]) -> ContainerConfig {
        ContainerConfig {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sandbox: self.sandbox(id),
            ..ContainerConfig::default()
        }
    }

    fn prepare(&self, id: &str, env: &[(&str, &str)]) -> Result<Option<LaunchInfo>, IsolatorError> {
        self.iso.prepare(&cid(id), &self.config(id, env))
    }

    fn checkpoint(&self) -> PathBuf {
        self.tmp.path().join("checkpoint")
    }

    fn container_files(&self) -> Vec<String> {
        files(&self.checkpoint().join("containers"))
    }

    fn volume_files(&self) -> Vec<String> {
        files(&self.checkpoint().join("volumes/fake"))
    }

    fn volume(&self, name: &str) -> Option<crate::ledger::VolumeRecord> {
        crate::ledger::Ledger::open(self.checkpoint())
            .unwrap()
            .read_volume(&key(name))
            .unwrap()
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

/// The files of a ledger directory but the temp files the ledger keeps for reuse.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(crate::ledger::durable::TEMP_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mount_id_of(call: &str) -> String {
    call.rsplit(' ').next().unwrap().to_owned()
}

const ONE: &[(&str, &str)] = &[
    ("DVDI_VOLUME_NAME", "data"),
    ("DVDI_VOLUME_CONTAINERPATH", "data"),
];

// ---- prepare ----

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

// ---- container paths ----

#[test]
fn a_symlink_planted_in_the_sandbox_is_refused_and_nothing_is_created_outside() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    for (path, link_at, points_to) in [
        ("data", "data", outside.path().to_path_buf()),
        ("data/x", "data", outside.path().to_path_buf()),
        ("a/data", "a", PathBuf::from("/etc")),
    ] {
        let id = format!("c-{}", path.replace('/', "-"));
        let sandbox = f.sandbox(&id);
        std::os::unix::fs::symlink(&points_to, sandbox.join(link_at)).unwrap();
        let err = f
            .iso
            .prepare(
                &cid(&id),
                &ContainerConfig {
                    sandbox: sandbox.clone(),
                    ..f.config(
                        &id,
                        &[
                            ("DVDI_VOLUME_NAME", "data"),
                            ("DVDI_VOLUME_CONTAINERPATH", path),
                        ],
                    )
                },
            )
            .unwrap_err();
        assert!(matches!(err, IsolatorError::ContainerPath { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("symbolic link"), "{text}");
        assert!(
            text.contains(&sandbox.join(link_at).display().to_string()),
            "{text}"
        );
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!Path::new("/etc/data").exists());
    assert!(f.driver.calls().is_empty());
    assert!(f.host.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn absolute_paths_must_exist_unless_under_tmp_and_never_cross_a_symlink() {
    let f = Fixture::new();
    let rootfs = f.tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("srv/es")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("etc-link")).unwrap();
    let cfg = |path: &str| ContainerConfig {
        rootfs: Some(rootfs.clone()),
        ..f.config(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", path),
            ],
        )
    };
    // Missing outside /tmp: refused, naming the missing directory.
    let err = f
        .iso
        .prepare(&cid("c1"), &cfg("/srv/missing/x"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains("srv/missing"),
        "{text}"
    );
    // An absolute symlink in the rootfs would resolve on the host: refused.
    let err = f.iso.prepare(&cid("c1"), &cfg("/etc-link/x")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(f.driver.calls().is_empty());

    // Existing: bound at rootfs/path. Under /tmp: created.
    let info = f.iso.prepare(&cid("c1"), &cfg("/srv/es")).unwrap().unwrap();
    assert_eq!(info.mounts[0].target, rootfs.join("srv/es"));
    f.iso.cleanup(&cid("c1")).unwrap();
    let info = f
        .iso
        .prepare(
            &cid("c2"),
            &ContainerConfig {
                rootfs: Some(rootfs.clone()),
                ..f.config(
                    "c2",
                    &[
                        ("DVDI_VOLUME_NAME", "data"),
                        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/new/dir"),
                    ],
                )
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts[0].target, rootfs.join("tmp/new/dir"));
    assert!(rootfs.join("tmp/new/dir").is_dir());
}

/// Issue 10, finding 7: the image rootfs is task-controlled, like the sandbox. Every symlink
/// in the components we walk — the rootfs's own `tmp` included — is refused, whatever it
/// points at (a host directory, a relative escape, a directory inside the image, nothing),
/// and nothing is created anywhere.
#[test]
fn an_image_rootfs_is_walked_like_the_sandbox_and_never_left_through_a_symlink() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    // (component made a symlink, container paths that walk through it)
    let layouts: [(&str, &[&str]); 4] = [
        ("tmp", &["/tmp/newdir", "/tmp/newdir/deeper", "/tmp/x"]),
        ("tmp/sub", &["/tmp/sub/newdir", "/tmp/sub"]),
        ("srv", &["/srv/data", "/srv"]),
        ("srv/es", &["/srv/es/config"]),
    ];
    let mut n = 0;
    for (link, paths) in layouts {
        let depth = link.matches('/').count() + 1;
        let kinds: [(&str, PathBuf); 4] = [
            ("absolute to a host dir", outside.path().to_path_buf()),
            (
                "relative, out of the rootfs",
                PathBuf::from("../".repeat(depth + 1)).join(
                    outside
                        .path()
                        .strip_prefix(f.tmp.path().parent().unwrap())
                        .unwrap_or(outside.path()),
                ),
            ),
            ("relative, inside the image", PathBuf::from("inside")),
            ("dangling", PathBuf::from("/nonexistent-dvdi-test-target")),
        ];
        for (kind, points_to) in kinds {
            for path in paths {
                n += 1;
                let id = format!("img{n}");
                let rootfs = f.tmp.path().join(format!("rootfs{n}"));
                std::fs::create_dir_all(rootfs.join("inside")).unwrap();
                let parent = rootfs.join(link);
                std::fs::create_dir_all(parent.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(&points_to, &parent).unwrap();
                let cfg = ContainerConfig {
                    rootfs: Some(rootfs.clone()),
                    ..f.config(
                        &id,
                        &[
                            ("DVDI_VOLUME_NAME", "data"),
                            ("DVDI_VOLUME_CONTAINERPATH", path),
                        ],
                    )
                };
                let err = f.iso.prepare(&cid(&id), &cfg).unwrap_err();
                let text = err.to_string();
                let what = format!("{link} {kind}, {path}: {text}");
                assert!(matches!(err, IsolatorError::ContainerPath { .. }), "{what}");
                assert!(text.contains("symbolic link"), "{what}");
                assert!(text.contains(&format!("{path:?}")), "{what}");
                assert!(
                    text.contains(&parent.display().to_string()),
                    "names the link: {what}"
                );
                assert_eq!(
                    std::fs::read_dir(rootfs.join("inside")).unwrap().count(),
                    0,
                    "{what}"
                );
            }
        }
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(f.host.calls().is_empty(), "{:?}", f.host.calls());
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn an_image_without_tmp_gets_none_made_and_dotdot_never_reaches_the_walk() {
    let f = Fixture::new();
    let rootfs = f.tmp.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let cfg = |id: &str, path: &str| ContainerConfig {
        rootfs: Some(rootfs.clone()),
        ..f.config(
            id,
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", path),
            ],
        )
    };
    // The image's `tmp` is walked, never made: only what is below it is created.
    let err = f.iso.prepare(&cid("c1"), &cfg("c1", "/tmp/x")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains(&rootfs.join("tmp").display().to_string()),
        "{text}"
    );
    assert!(!rootfs.join("tmp").exists());
    // A file where a directory should be is refused too.
    std::fs::write(rootfs.join("tmp"), b"").unwrap();
    let err = f.iso.prepare(&cid("c1"), &cfg("c1", "/tmp/x")).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    // `..` is a grammar error naming the variable, with or without an image.
    for path in ["/tmp/../etc", "/tmp/x/../../etc", "../x", "/srv/.."] {
        let err = f.iso.prepare(&cid("c1"), &cfg("c1", path)).unwrap_err();
        assert!(
            matches!(err, IsolatorError::Grammar { .. }),
            "{path}: {err}"
        );
        assert!(
            err.to_string().contains("DVDI_VOLUME_CONTAINERPATH"),
            "{err}"
        );
    }
    assert!(f.host.calls().is_empty());
    assert!(f.driver.calls().is_empty());
}

#[test]
fn plan_target_maps_paths_and_rechecks_dotdot() {
    use super::plan::plan_target;
    use crate::grammar::ContainerPath;
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path();
    let t = plan_target(&ContainerPath::new("a/b").unwrap(), sandbox, None).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (sandbox, Path::new("a/b"), true)
    );
    let t = plan_target(&ContainerPath::new("/tmp/x/y").unwrap(), sandbox, None).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (Path::new("/tmp"), Path::new("x/y"), true)
    );
    // An image's /tmp is one more component walked from its rootfs, which must exist.
    std::fs::create_dir_all(sandbox.join("rootfs/tmp")).unwrap();
    let rootfs = sandbox.join("rootfs");
    let t = plan_target(
        &ContainerPath::new("/tmp/x/y").unwrap(),
        sandbox,
        Some(&rootfs),
    )
    .unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create, t.must_exist),
        (rootfs.as_path(), Path::new("tmp/x/y"), true, 1)
    );
    let t = plan_target(&ContainerPath::new("/usr").unwrap(), sandbox, None).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (Path::new("/"), Path::new("usr"), false)
    );
    // `..` cannot even be built as a ContainerPath; a deserialised one is refused too.
    assert!(serde_json::from_str::<ContainerPath>("\"a/../b\"").is_err());
    assert!(matches!(
        plan_target(&ContainerPath::new("x").unwrap(), Path::new("rel"), None),
        Err(PathError::SandboxNotAbsolute { .. })
    ));
}

#[test]
fn a_target_swapped_for_a_symlink_after_planning_is_refused() {
    let f = Fixture::new();
    let sandbox = f.sandbox("c1");
    let outside = tempfile::tempdir().unwrap();
    // The walk refuses symlinks below the base; a base that itself resolves elsewhere is
    // trusted, but a target swapped for a symlink after planning is caught by realpath.
    let target = super::plan::Target {
        container_path: "data".into(),
        base: sandbox.clone(),
        rel: PathBuf::from("data"),
        create: true,
        must_exist: 0,
    };
    std::os::unix::fs::symlink(outside.path(), sandbox.join("data")).unwrap();
    let err = target.make(f.host.as_ref()).unwrap_err();
    assert!(matches!(err, PathError::Walk { .. }), "{err}");
    // The last line of defence, on its own: the path no longer resolves to the directory the
    // walk reached (here one made for the purpose), and its realpath is outside the base.
    std::fs::create_dir(sandbox.join("walked")).unwrap();
    let reached = crate::sys::DirId::resolve(&sandbox.join("walked")).unwrap();
    let err = target.check_resolves_inside(reached).unwrap_err();
    assert!(matches!(err, PathError::Escapes { .. }), "{err}");
    assert!(err.to_string().contains("outside"), "{err}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

// ---- recover ----

/// c1 prepared with `data` (and `other` with no path); then the agent restarts.
fn prepared() -> (Fixture, String) {
    let f = Fixture::new();
    f.prepare(
        "c1",
        &[
            ("DVDI_VOLUME_NAME", "data"),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
            ("DVDI_VOLUME_NAME1", "other"),
        ],
    )
    .unwrap();
    let id = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    (f, id)
}

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

// ---- holders, inspection, concurrency ----

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
