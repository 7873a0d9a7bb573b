//! The grammar's rules: real shapes.

use super::*;

#[test]
fn marathon_shape() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "foo"),
        ("DVDI_VOLUME_NAME1", "bar"),
        ("DVDI_VOLUME_OPTS1", "size=5,iops=150"),
        ("DVDI_VOLUME_NAME2", "baz"),
        ("DVDI_VOLUME_DRIVER2", "rexray"),
    ]);
    let got: Vec<(u8, &str, &VolumeOpts)> = parsed
        .volumes
        .iter()
        .map(|v| (v.origin.slot().unwrap(), v.name.as_str(), &v.opts))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "foo", &VolumeOpts::new()),
            (1, "bar", &opts(&[("size", "5"), ("iops", "150")])),
            (2, "baz", &VolumeOpts::new()),
        ]
    );
    assert!(parsed.volumes.iter().all(|v| v.driver.as_str() == "rexray"));
    assert!(parsed.warnings.is_empty());
}

#[test]
fn elasticsearch_node_with_two_volumes() {
    let parsed = ok(&[
        ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
        ("DVDI_VOLUME_NAME", "elasticsearch3config"),
        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config"),
        ("DVDI_VOLUME_NAME1", "elasticsearch3data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "data"),
    ]);
    assert_eq!(parsed.volumes.len(), 2);
    let (config, data) = (&parsed.volumes[0], &parsed.volumes[1]);
    assert_eq!(
        (
            config.origin.slot().unwrap(),
            config.name.as_str(),
            config.driver.as_str()
        ),
        (0, "elasticsearch3config", "rexray")
    );
    assert_eq!(config.container_path, path("/tmp/config"));
    assert!(config.container_path.as_ref().unwrap().is_absolute());
    assert_eq!(
        (
            data.origin.slot().unwrap(),
            data.name.as_str(),
            data.driver.as_str()
        ),
        (1, "elasticsearch3data", "rexray")
    );
    assert_eq!(data.container_path, path("data"));
    assert!(!data.container_path.as_ref().unwrap().is_absolute());
    assert!(parsed.warnings.is_empty());
}

#[test]
fn nfs_options_keep_slashes_colons_and_commas() {
    let parsed = ok(&[
        ("DVDI_VOLUME_NAME", "share"),
        ("DVDI_VOLUME_DRIVER", "local"),
        (
            "DVDI_VOLUME_OPTS",
            "type=nfs,o=addr=10.0.0.1,rw,device=:/export",
        ),
    ]);
    assert_eq!(
        parsed.volumes[0].opts,
        opts(&[
            ("type", "nfs"),
            ("o", "addr=10.0.0.1,rw"),
            ("device", ":/export")
        ])
    );
}

#[test]
fn empty_opts_is_an_empty_list() {
    let parsed = ok(&[("DVDI_VOLUME_NAME", "a"), ("DVDI_VOLUME_OPTS", "")]);
    assert!(parsed.volumes[0].opts.is_empty());
}

/// The Elasticsearch framework's executor environment, literally, in its order
/// (`ExecutorEnvironmentalVariables`; `tests/fixtures/mesos-1.12/prepare-es-framework-literal-env.json`
/// is a real agent's capture of it): the data volume's path comes as a second, unsuffixed
/// `DVDI_VOLUME_CONTAINERPATH`.
const ES_FRAMEWORK_ENV: &[(&str, &str)] = &[
    ("ES_HEAP_SIZE", "256m"),
    ("JAVA_OPTS", "256m"),
    ("ELASTICSEARCH_NODE_ID", "1"),
    ("DVDI_VOLUME_DRIVER", "rexray"),
    ("DVDI_VOLUME_NAME", "elasticsearch1config"),
    ("DVDI_VOLUME_OPTS", "size=5"),
    ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config"),
    ("DVDI_VOLUME_DRIVER1", "rexray"),
    ("DVDI_VOLUME_NAME1", "elasticsearch1data"),
    ("DVDI_VOLUME_OPTS1", "size=5"),
    ("DVDI_VOLUME_CONTAINERPATH", "/data"),
];

fn paths_of(parsed: &Parsed) -> Vec<(&str, Option<String>)> {
    parsed
        .volumes
        .iter()
        .map(|v| {
            let p = v.container_path.as_ref().map(|p| p.as_str().to_owned());
            (v.name.as_str(), p)
        })
        .collect()
}

#[test]
fn the_elasticsearch_frameworks_second_unsuffixed_path_is_slot_1s() {
    let parsed = ok(ES_FRAMEWORK_ENV);
    assert_eq!(
        paths_of(&parsed),
        vec![
            ("elasticsearch1config", Some("/tmp/config".to_owned())),
            ("elasticsearch1data", Some("/data".to_owned())),
        ]
    );
    one_warning_containing(
        &parsed,
        &[
            "DVDI_VOLUME_CONTAINERPATH=\"/data\"",
            "DVDI_VOLUME_CONTAINERPATH1",
            "\"/tmp/config\"",
        ],
    );
    assert!(
        !parsed.warnings.iter().any(|w| w.contains("last one wins")),
        "{:?}",
        parsed.warnings
    );
}

/// The literal list above is the one the real agent handed over.
#[test]
fn the_literal_list_is_the_captured_one() {
    let json = dvdi_testkit::fixtures::mesos("prepare-es-framework-literal-env.json");
    let vars = json["container_config"]["command_info"]["environment"]["variables"]
        .as_array()
        .unwrap();
    let captured: Vec<(&str, &str)> = vars
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    assert_eq!(captured, ES_FRAMEWORK_ENV);
}

/// Anything but exactly that shape keeps "last wins" (with its warning).
#[test]
fn other_repeated_paths_keep_last_wins() {
    let with = |changes: &[(usize, Option<(&'static str, &'static str)>)]| {
        let mut env: Vec<Option<(&str, &str)>> =
            ES_FRAMEWORK_ENV.iter().copied().map(Some).collect();
        for (at, pair) in changes {
            if *at < env.len() {
                env[*at] = *pair;
            } else {
                env.push(*pair);
            }
        }
        env.into_iter().flatten().collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // Slot 1 has a path of its own.
        (
            "CONTAINERPATH1 set",
            with(&[(99, Some(("DVDI_VOLUME_CONTAINERPATH1", "/srv/data")))]),
        ),
        // The repeat comes before slot 1 is named.
        (
            "repeat before NAME1",
            vec![
                ("DVDI_VOLUME_NAME", "c"),
                ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config"),
                ("DVDI_VOLUME_CONTAINERPATH", "/data"),
                ("DVDI_VOLUME_NAME1", "d"),
            ],
        ),
        // Three unsuffixed paths.
        (
            "three paths",
            with(&[(99, Some(("DVDI_VOLUME_CONTAINERPATH", "/srv/x")))]),
        ),
        // Slot 0 spelled with its explicit suffix.
        (
            "CONTAINERPATH0",
            with(&[(6, Some(("DVDI_VOLUME_CONTAINERPATH0", "/tmp/config")))]),
        ),
    ];
    for (what, env) in cases {
        let parsed = ok(&env);
        assert!(
            parsed.warnings.iter().any(|w| w.contains("last one wins")),
            "{what}: {:?}",
            parsed.warnings
        );
        assert!(
            !parsed.warnings.iter().any(|w| w.contains("Elasticsearch")),
            "{what}: {:?}",
            parsed.warnings
        );
    }
    // Slot 1 without a NAME: no volume to give the path to.
    let parsed = ok(&with(&[(8, None)]));
    assert_eq!(
        paths_of(&parsed)[0].1.as_deref(),
        Some("/data"),
        "{parsed:?}"
    );
}
