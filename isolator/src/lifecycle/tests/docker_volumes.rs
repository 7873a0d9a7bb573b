//! `DOCKER_VOLUME`s of `ContainerInfo` through the lifecycle: the same checks, options and
//! chown as the environment's volumes, errors naming the entry, and the switch that is off
//! by default.

use super::*;
use crate::container_info::DockerVolume;

fn dv(index: usize, driver: &str, name: &str, path: &str, mode: &str) -> DockerVolume {
    DockerVolume::test(index, driver, name, path, mode)
}

fn on() -> Fixture {
    Fixture::with(|c| c.docker_volumes = true)
}

impl Fixture {
    fn with_docker(&self, id: &str, volumes: Vec<DockerVolume>) -> ContainerConfig {
        ContainerConfig {
            docker_volumes: volumes,
            ..self.config(id, &[])
        }
    }
}

#[test]
fn a_docker_volume_is_created_with_its_options_mounted_and_bound_under_the_sandbox() {
    let f = on();
    let mut v = dv(2, "fake", "dv1", "data/x", "RW");
    v.options = vec![("size".into(), "5".into())];
    let info = f
        .iso
        .prepare(&cid("c1"), &f.with_docker("c1", vec![v]))
        .unwrap()
        .unwrap();
    assert_eq!(f.driver.mounted_ids("dv1").len(), 1);
    assert_eq!(f.driver.calls_of("Create"), ["Create dv1 size=5"]);
    assert_eq!(
        info.mounts,
        [LaunchMount {
            source: FakeDriver::mountpoint("dv1"),
            target: f.sandbox("c1").join("data/x"),
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
        }]
    );
    assert!(f.sandbox("c1").join("data/x").is_dir());
    f.iso.cleanup(&cid("c1")).unwrap();
    assert!(f.driver.mounted_ids("dv1").is_empty());
}

#[test]
fn off_by_default_they_are_ignored_and_said_once_at_info_then_at_debug() {
    let records: Arc<Mutex<Vec<(LogLevel, String)>>> = Default::default();
    let sink = records.clone();
    let f = Fixture::with(move |c| {
        c.log_level = LogLevel::Debug;
        c.log = Logger::new(move |l, m| sink.lock().unwrap().push((l, m.to_owned())));
    });
    for id in ["c1", "c2"] {
        let cfg = f.with_docker(id, vec![dv(0, "fake", "dv1", "data", "RW")]);
        assert_eq!(f.iso.prepare(&cid(id), &cfg).unwrap(), None);
    }
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
    let said: Vec<LogLevel> = records
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains("DOCKER_VOLUME") && m.contains("docker_volumes is false"))
        .map(|(l, _)| *l)
        .collect();
    assert_eq!(said, [LogLevel::Info, LogLevel::Debug]);
    // The environment's volumes of the same container are served all the same.
    let cfg = ContainerConfig {
        docker_volumes: vec![dv(0, "fake", "dv1", "data", "RW")],
        ..f.config("c3", &[("DVDI_VOLUME_NAME", "envvol")])
    };
    assert!(f.iso.prepare(&cid("c3"), &cfg).unwrap().is_some());
    assert_eq!(f.driver.mounted_ids("envvol").len(), 1);
    assert!(f.driver.mounted_ids("dv1").is_empty());
}

#[test]
fn operator_policy_applies_and_names_the_entry() {
    // allowed_drivers
    let f = Fixture::with(|c| {
        c.docker_volumes = true;
        c.allowed_drivers = Some([DriverName::new("other").unwrap()].into());
    });
    let err = f
        .iso
        .prepare(
            &cid("c1"),
            &f.with_docker("c1", vec![dv(3, "fake", "dv1", "d", "RW")]),
        )
        .unwrap_err();
    assert!(
        matches!(err, IsolatorError::DriverNotAllowed { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("container_info.volumes[3]"), "{text}");
    assert!(text.contains("\"dv1\""), "{text}");

    // protected host directories, for a container without an image
    let f = on();
    let err = f
        .iso
        .prepare(
            &cid("c1"),
            &f.with_docker("c1", vec![dv(1, "fake", "dv1", "/etc/x", "RW")]),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "container_info.volumes[1].container_path=\"/etc/x\" covers the host directory /etc"
        ),
        "{text}"
    );

    // the local driver's device options
    let local = Arc::new(FakeDriver::new("local"));
    let resolver =
        DriverResolver::with_host(Settings::default(), f.host.clone()).with_driver(local.clone());
    let iso = Isolator::new(f.iso.config().clone(), resolver, f.host.clone()).unwrap();
    let mut v = dv(4, "local", "etc", "d", "RW");
    v.options = vec![
        ("type".into(), "none".into()),
        ("o".into(), "bind".into()),
        ("device".into(), "/etc".into()),
    ];
    let err = iso
        .prepare(&cid("c2"), &f.with_docker("c2", vec![v]))
        .unwrap_err();
    assert!(
        matches!(err, IsolatorError::LocalDeviceOptions { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("container_info.volumes[4].source.docker_volume.driver_options sets"),
        "{text}"
    );
    assert!(local.calls().is_empty());
    assert!(f.host.calls().is_empty(), "{:?}", f.host.calls());
}

#[test]
fn chown_volume_root_applies_to_read_write_docker_volumes_only() {
    let f = Fixture::with(|c| {
        c.docker_volumes = true;
        c.chown_volume_root = true;
    });
    let cfg = ContainerConfig {
        user: Some("root".into()),
        ..f.with_docker(
            "c1",
            vec![
                dv(0, "fake", "rw", "a", "RW"),
                dv(1, "fake", "ro", "b", "RO"),
            ],
        )
    };
    f.iso.prepare(&cid("c1"), &cfg).unwrap();
    let chowned: Vec<PathBuf> = f
        .host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            HostCall::Lchown { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(chowned, [FakeDriver::mountpoint("rw")]);
}

#[test]
fn a_bad_entry_fails_the_prepare_before_anything_is_touched() {
    let f = on();
    let cfg = ContainerConfig {
        docker_volumes: vec![dv(1, "fake", "dv", "d", "ro")],
        ..f.config("c1", &[("DVDI_VOLUME_NAME", "envvol")])
    };
    let err = f.iso.prepare(&cid("c1"), &cfg).unwrap_err();
    assert!(matches!(err, IsolatorError::ContainerInfo { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("container c1: container_info.volumes[1]"),
        "{err}"
    );
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
    assert!(f.host.calls().is_empty());
}
