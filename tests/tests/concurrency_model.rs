//! A model-based randomized concurrency test (root): worker threads in two processes prepare
//! and clean up containers that share a few volumes — four on a test plugin with random
//! delays and failures, two tmpfs volumes on the embedded `local` driver — and afterwards the
//! ledger, the plugin's mounts, its Mount/Unmount record and the mount table are checked
//! against a reference model built only from what the workers saw succeed.
//!
//! Every seed is printed; `DVDI_MODEL_SEED=S` reruns one (the same operations and fault
//! schedule; thread interleavings differ from run to run, which is the point).
//! `DVDI_MODEL_OPS=N` sets the operations per seed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dvdi::holder::Holder;
use dvdi::ledger::ContainerState;
use dvdi::local::LocalDriver;
use dvdi::sys::RealHost;
use dvdi::{
    ContainerConfig, ContainerId, DriverName, Isolator, IsolatorConfig, Logger, Settings,
    VolumeDriver, VolumeName, VolumeOpts,
};
use dvdi_testkit::env::require_root;
use dvdi_testkit::plugin::{Fault, TestPlugin, ANY_ENDPOINT};
use serde_json::{json, Value};

const PLUGIN: &str = "modelp";
const PLUGIN_VOLUMES: [&str; 4] = ["pv0", "pv1", "pv2", "pv3"];
const LOCAL_VOLUMES: [&str; 2] = ["lv0", "lv1"];
const THREADS_PER_PROCESS: usize = 4;
const PROCESSES: usize = 2;
const DEFAULT_SEEDS: [u64; 4] = [1, 2, 3, 0x5eed];
const DEFAULT_OPS: usize = 200;
/// The isolator's Mount deadline; the chaos sometimes delays a Mount past it (the plugin
/// mounts late, after the isolator gave up and sent the Unmount).
const MOUNT_TIMEOUT: Duration = Duration::from_millis(250);
const LATE_MOUNT: Duration = Duration::from_millis(400);
const CHILD_VAR: &str = "DVDI_MODEL_CHILD";
const LOG_MARK: &str = "DVDI-MODEL-LOG:";

/// splitmix64: a tiny seeded generator, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Everything a worker process needs: where the world is, which seed, which slice of it.
#[derive(Clone)]
struct Job {
    root: PathBuf,
    seed: u64,
    process: usize,
    ops_per_thread: usize,
}

impl Job {
    fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    fn plugin_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }
    fn local_root(&self) -> PathBuf {
        self.root.join("volumes")
    }
    fn sandbox(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    fn to_json(&self) -> Value {
        json!({
            "root": self.root, "seed": self.seed, "process": self.process,
            "ops_per_thread": self.ops_per_thread,
        })
    }

    fn from_json(v: &Value) -> Job {
        Job {
            root: PathBuf::from(v["root"].as_str().unwrap()),
            seed: v["seed"].as_u64().unwrap(),
            process: v["process"].as_u64().unwrap() as usize,
            ops_per_thread: v["ops_per_thread"].as_u64().unwrap() as usize,
        }
    }

    fn isolator(&self) -> Isolator {
        let config = IsolatorConfig {
            checkpoint_dir: self.checkpoint(),
            default_driver: DriverName::new(PLUGIN).unwrap(),
            settings: Settings {
                local_root: self.local_root(),
                client: dvdi::ClientConfig {
                    plugin_dirs: vec![self.plugin_dir()],
                    timeouts: dvdi::Timeouts {
                        mount: MOUNT_TIMEOUT,
                        ..dvdi::Timeouts::uniform(Duration::from_secs(20))
                    },
                    ..dvdi::ClientConfig::default()
                },
                ..Settings::default()
            },
            // Injected failures make many warnings; the model checks the outcomes.
            log: Logger::new(|_, _| {}),
            ..IsolatorConfig::default()
        };
        Isolator::from_config(config).unwrap()
    }
}

/// One volume a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Want {
    driver: String,
    name: String,
    readonly: bool,
    container_path: Option<String>,
}

/// One operation a worker did and whether it succeeded.
#[derive(Debug, Clone)]
struct Entry {
    container: String,
    prepare: bool,
    ok: bool,
    wants: Vec<Want>,
    error: String,
}

fn entry_to_json(e: &Entry) -> Value {
    json!({
        "container": e.container, "prepare": e.prepare, "ok": e.ok, "error": e.error,
        "wants": e.wants.iter().map(|w| json!({
            "driver": w.driver, "name": w.name, "readonly": w.readonly,
            "container_path": w.container_path,
        })).collect::<Vec<_>>(),
    })
}

fn entry_from_json(v: &Value) -> Entry {
    Entry {
        container: v["container"].as_str().unwrap().into(),
        prepare: v["prepare"].as_bool().unwrap(),
        ok: v["ok"].as_bool().unwrap(),
        error: v["error"].as_str().unwrap().into(),
        wants: v["wants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| Want {
                driver: w["driver"].as_str().unwrap().into(),
                name: w["name"].as_str().unwrap().into(),
                readonly: w["readonly"].as_bool().unwrap(),
                container_path: w["container_path"].as_str().map(Into::into),
            })
            .collect(),
    }
}

/// The environment a container gets for `wants` (driver `local` spelled out, the plugin's
/// volumes sometimes through the default driver).
fn env_for(wants: &[Want], rng: &mut Rng) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (slot, w) in wants.iter().enumerate() {
        let suffix = if slot == 0 && rng.chance(50) {
            String::new()
        } else {
            slot.to_string()
        };
        env.push((format!("DVDI_VOLUME_NAME{suffix}"), w.name.clone()));
        if w.driver != PLUGIN || rng.chance(50) {
            env.push((format!("DVDI_VOLUME_DRIVER{suffix}"), w.driver.clone()));
        }
        if w.readonly {
            env.push((format!("DVDI_VOLUME_READONLY{suffix}"), "true".into()));
        }
        if let Some(p) = &w.container_path {
            env.push((format!("DVDI_VOLUME_CONTAINERPATH{suffix}"), p.clone()));
        }
    }
    env
}

fn random_wants(rng: &mut Rng) -> Vec<Want> {
    let all: Vec<(&str, &str)> = PLUGIN_VOLUMES
        .iter()
        .map(|v| (PLUGIN, *v))
        .chain(LOCAL_VOLUMES.iter().map(|v| ("local", *v)))
        .collect();
    // Mostly one volume, so that volumes fall idle and are mounted anew often.
    let count = match rng.below(10) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let mut picked = BTreeSet::new();
    while picked.len() < count {
        picked.insert(rng.below(all.len() as u64) as usize);
    }
    picked
        .into_iter()
        .enumerate()
        .map(|(i, index)| Want {
            driver: all[index].0.into(),
            name: all[index].1.into(),
            readonly: rng.chance(25),
            container_path: match rng.below(3) {
                0 => None,
                1 => Some(format!("vol{i}")),
                _ => Some(format!("data/v{i}")),
            },
        })
        .collect()
}

/// One worker thread: its own containers, prepared and cleaned at random.
fn worker(iso: &Isolator, job: &Job, thread: usize) -> Vec<Entry> {
    let mut rng = Rng::new(job.seed, (job.process * 100 + thread) as u64 + 1);
    let mut live: Vec<(String, Vec<Want>)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut log = Vec::new();
    for n in 0..job.ops_per_thread {
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let cleanup = !live.is_empty() && (live.len() >= 2 || rng.chance(70));
        if cleanup {
            let (id, wants) = live.swap_remove(rng.below(live.len() as u64) as usize);
            let result = iso.cleanup(&ContainerId::new(&id).unwrap());
            log.push(Entry {
                container: id,
                prepare: false,
                ok: result.is_ok(),
                wants,
                error: result.err().map(|e| e.to_string()).unwrap_or_default(),
            });
        } else if !failed.is_empty() && rng.chance(5) {
            // Cleanup of a container whose prepare failed: nothing to do, and it succeeds.
            let id = failed.swap_remove(0);
            let result = iso.cleanup(&ContainerId::new(&id).unwrap());
            log.push(Entry {
                container: id,
                prepare: false,
                ok: result.is_ok(),
                wants: Vec::new(),
                error: result.err().map(|e| e.to_string()).unwrap_or_default(),
            });
        } else {
            let id = container_id(job.seed, job.process, thread, n);
            let wants = random_wants(&mut rng);
            let sandbox = job.sandbox(&id);
            std::fs::create_dir_all(&sandbox).unwrap();
            let cfg = ContainerConfig {
                env: env_for(&wants, &mut rng),
                sandbox,
                // The second process's containers are held by it, as `dvdcli exec`'s are:
                // alive while it runs, whatever the agent's lists say.
                holder: (job.process > 0).then(|| Holder::current().unwrap()),
                ..ContainerConfig::default()
            };
            let result = iso.prepare(&ContainerId::new(&id).unwrap(), &cfg);
            let ok = matches!(result, Ok(Some(_)));
            if ok {
                live.push((id.clone(), wants.clone()));
            } else {
                failed.push(id.clone());
            }
            log.push(Entry {
                container: id,
                prepare: true,
                ok,
                wants,
                error: match result {
                    Err(e) => e.to_string(),
                    Ok(None) => "prepare returned no launch info".into(),
                    Ok(Some(_)) => String::new(),
                },
            });
        }
    }
    log
}

/// The worker threads of one process.
fn run_workers(job: &Job) -> Vec<Entry> {
    let iso = Arc::new(job.isolator());
    let handles: Vec<_> = (0..THREADS_PER_PROCESS)
        .map(|t| {
            let (iso, job) = (Arc::clone(&iso), job.clone());
            std::thread::spawn(move || worker(&iso, &job, t))
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// Faults at random while the workers run: plugin delays of 0–30 ms, failed Mounts,
/// Unmounts and Gets, and now and then a Mount that answers after its deadline.
fn chaos(plugin: &TestPlugin, job: &Job, stop: &AtomicBool) -> (usize, Duration) {
    let seed = job.seed;
    let mut rng = Rng::new(seed, 0xc4a05);
    // A restarted agent recovering while the workers run: it knows every container of this
    // process's workers (a superset of the running ones, as an agent's list may be); the
    // second process's containers are kept by their live holder. It must disturb nothing.
    let agent = job.isolator();
    let known: Vec<ContainerId> = (0..THREADS_PER_PROCESS)
        .flat_map(|t| (0..job.ops_per_thread).map(move |n| (t, n)))
        .map(|(t, n)| ContainerId::new(&container_id(job.seed, 0, t, n)).unwrap())
        .collect();
    let mut recovers = 0;
    let mut longest = Duration::ZERO;
    let endpoints = [
        "VolumeDriver.Get",
        "VolumeDriver.Mount",
        "VolumeDriver.Unmount",
        ANY_ENDPOINT,
    ];
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(2 + rng.below(12)));
        let times = Some(1 + rng.below(3) as usize);
        match rng.below(10) {
            0..=3 => plugin.set_fault(
                endpoints[rng.below(4) as usize],
                Fault::Delay(Duration::from_millis(rng.below(31))),
                times,
            ),
            4 | 5 => plugin.set_fault(
                "VolumeDriver.Mount",
                Fault::ErrorIn200("injected mount failure".into()),
                Some(1),
            ),
            6 | 7 => plugin.set_fault(
                "VolumeDriver.Unmount",
                Fault::ErrorIn200("injected unmount failure: device busy".into()),
                Some(1),
            ),
            8 => plugin.set_fault(
                "VolumeDriver.Get",
                Fault::ErrorIn200("injected get failure".into()),
                Some(1),
            ),
            _ if rng.chance(40) => {
                let t0 = std::time::Instant::now();
                let report = agent.recover(&known, &[]).unwrap();
                longest = longest.max(t0.elapsed());
                assert_eq!(report.cleaned_containers, 0, "seed {seed}: {report:?}");
                assert_eq!(report.corrupt_records, 0, "seed {seed}: {report:?}");
                recovers += 1;
            }
            _ if rng.chance(50) => {
                plugin.set_fault("VolumeDriver.Mount", Fault::Delay(LATE_MOUNT), Some(1))
            }
            _ => plugin.clear_faults(),
        }
    }
    plugin.clear_faults();
    (recovers, longest)
}

fn container_id(seed: u64, process: usize, thread: usize, n: usize) -> String {
    format!("m{seed}-p{process}-t{thread}-c{n}")
}

/// The reference model: live containers and what they asked for.
struct Model {
    live: BTreeMap<String, Vec<Want>>,
    prepares_ok: usize,
    prepares_failed: usize,
    cleanups: usize,
}

impl Model {
    fn replay(log: &[Entry]) -> Model {
        let mut m = Model {
            live: BTreeMap::new(),
            prepares_ok: 0,
            prepares_failed: 0,
            cleanups: 0,
        };
        for e in log {
            if e.prepare {
                if e.ok {
                    m.prepares_ok += 1;
                    assert!(m
                        .live
                        .insert(e.container.clone(), e.wants.clone())
                        .is_none());
                } else {
                    m.prepares_failed += 1;
                }
            } else {
                // A cleanup drops the references even when an Unmount failed (remembered for
                // retry; it never pins the volume).
                m.cleanups += 1;
                m.live.remove(&e.container);
                if !e.ok {
                    assert!(
                        e.error.contains("unmount") && e.error.contains("remembered for retry"),
                        "cleanup of {} failed for another reason than an unmount: {}",
                        e.container,
                        e.error
                    );
                }
            }
        }
        m
    }

    /// (driver, name) → the live containers holding it.
    fn holders(&self) -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (id, wants) in &self.live {
            for w in wants {
                out.entry((w.driver.clone(), w.name.clone()))
                    .or_default()
                    .insert(id.clone());
            }
        }
        out
    }
}

fn local_driver_ids(job: &Job, volume: &str) -> BTreeSet<String> {
    let path = job.local_root().join(volume).join("users.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeSet::new();
    };
    let value: Value = serde_json::from_str(&text).unwrap();
    value["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

fn mounted(path: &Path) -> bool {
    dvdi::mountinfo::read_self()
        .unwrap()
        .iter()
        .any(|m| m.mount_point == path)
}

/// What the check found worth reporting.
#[derive(Default)]
struct Seen {
    failed_unmounts: usize,
}

/// The ledger, the plugin, the local driver and the mount table against the model.
fn check(job: &Job, iso: &Isolator, plugin: &TestPlugin, model: &Model, when: &str) -> Seen {
    let seed = job.seed;
    let ctx = format!("seed {seed} ({when}; rerun with DVDI_MODEL_SEED={seed})");
    let inspection = iso.inspect().unwrap();
    assert!(
        inspection.problems.is_empty(),
        "{ctx}: {:?}",
        inspection.problems
    );

    // Containers: exactly the live ones, prepared, with what they asked for.
    let listed: BTreeSet<String> = inspection
        .containers
        .iter()
        .map(|c| c.id.as_str().to_owned())
        .collect();
    let expected: BTreeSet<String> = model.live.keys().cloned().collect();
    assert_eq!(listed, expected, "{ctx}: ledger containers vs live ones");
    for c in &inspection.containers {
        assert_eq!(c.state, ContainerState::Prepared, "{ctx}: {}", c.id);
        let mut got: Vec<Want> = c
            .volumes
            .iter()
            .map(|u| Want {
                driver: u.driver.as_str().into(),
                name: u.name.as_str().into(),
                readonly: u.readonly,
                container_path: u.container_path.clone(),
            })
            .collect();
        got.sort();
        let mut want = model.live[c.id.as_str()].clone();
        want.sort();
        assert_eq!(got, want, "{ctx}: volumes of {}", c.id);
        for u in &c.volumes {
            if let Some(target) = &u.target {
                assert!(
                    target.starts_with(job.sandbox(c.id.as_str())),
                    "{ctx}: {target:?}"
                );
                assert!(target.is_dir(), "{ctx}: bind target {target:?} not made");
            }
        }
    }

    // Volumes: one mount per held volume, with the right holders; the driver holds exactly
    // that mount id plus the ids of unmounts that failed (remembered for retry).
    let holders = model.holders();
    let mut seen = Seen::default();
    let views: BTreeMap<(String, String), &dvdi::lifecycle::VolumeView> = inspection
        .volumes
        .iter()
        .map(|v| ((v.driver.as_str().into(), v.name.as_str().into()), v))
        .collect();
    let all = PLUGIN_VOLUMES
        .iter()
        .map(|v| (PLUGIN, *v))
        .chain(LOCAL_VOLUMES.iter().map(|v| ("local", *v)));
    for (driver, name) in all {
        let key = (driver.to_owned(), name.to_owned());
        let view = views.get(&key);
        let mut expected_ids = BTreeSet::new();
        match holders.get(&key) {
            Some(h) => {
                let view = view.unwrap_or_else(|| {
                    panic!("{ctx}: {driver}/{name} held by {h:?} has no record")
                });
                let got: BTreeSet<String> =
                    view.holders.iter().map(|c| c.as_str().to_owned()).collect();
                assert_eq!(&got, h, "{ctx}: holders of {driver}/{name}");
                let id = view
                    .mount_id
                    .clone()
                    .unwrap_or_else(|| panic!("{ctx}: {driver}/{name} is held but has no mount"));
                assert_eq!(
                    format!("{:?}", view.state),
                    "Mounted",
                    "{ctx}: {driver}/{name}"
                );
                expected_ids.insert(id);
            }
            None => {
                if let Some(view) = view {
                    assert!(view.holders.is_empty(), "{ctx}: {driver}/{name}: {view:?}");
                    assert!(view.mount_id.is_none(), "{ctx}: {driver}/{name}: {view:?}");
                }
            }
        }
        if let Some(view) = view {
            seen.failed_unmounts += view.failed_unmounts.len();
            expected_ids.extend(view.failed_unmounts.iter().map(|f| f.mount_id.clone()));
        }
        let driver_ids: BTreeSet<String> = if driver == PLUGIN {
            plugin.mount_ids(name).into_iter().collect()
        } else {
            local_driver_ids(job, name)
        };
        assert_eq!(
            driver_ids, expected_ids,
            "{ctx}: mount ids the {driver} driver holds for {name} vs the ledger"
        );
        if driver == "local" {
            let data = job.local_root().join(name).join("_data");
            assert_eq!(
                mounted(&data),
                !expected_ids.is_empty(),
                "{ctx}: mountinfo for {}",
                data.display()
            );
        }
    }
    check_pairing(plugin, &ctx);
    seen
}

/// The plugin's Mount/Unmount record, per mount id: every Mount and Unmount that took effect.
/// Each id is mounted at most once and unmounted at most once, after its Mount. Returns (ids
/// mounted, ids unmounted, ids whose Unmount was refused at least once before it succeeded).
fn check_pairing(plugin: &TestPlugin, ctx: &str) -> (usize, usize, usize) {
    let mut state: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for event in plugin.mount_events() {
        let (mounts, unmounts) = state.entry(event.id.clone()).or_default();
        if event.mounted {
            assert_eq!(*mounts, 0, "{ctx}: mount id {} mounted twice", event.id);
            *mounts += 1;
        } else {
            assert_eq!(
                *mounts, 1,
                "{ctx}: mount id {} unmounted before its Mount",
                event.id
            );
            assert_eq!(*unmounts, 0, "{ctx}: mount id {} unmounted twice", event.id);
            *unmounts += 1;
        }
    }
    // Unmount calls that did not take effect (a fault, or a refusal), per id.
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    for call in plugin.calls() {
        if call.endpoint == "VolumeDriver.Unmount" {
            if let Some(id) = call.body.get("ID").and_then(Value::as_str) {
                *refused.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    let mounted = state.values().filter(|(m, _)| *m > 0).count();
    let unmounted = state.values().filter(|(_, u)| *u > 0).count();
    let retried = state
        .iter()
        .filter(|(id, (_, u))| *u > 0 && refused.get(*id).copied().unwrap_or(0) > 1)
        .count();
    (mounted, unmounted, retried)
}

/// One seed: a fresh world, the workers of both processes, the checks, recover, cleanup.
fn run_seed(seed: u64, ops: usize) -> (usize, String) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let ops_per_thread = ops.div_ceil(THREADS_PER_PROCESS * PROCESSES);
    let job = Job {
        root: root.clone(),
        seed,
        process: 0,
        ops_per_thread,
    };
    std::fs::create_dir_all(job.plugin_dir()).unwrap();
    let plugin = TestPlugin::start(
        &job.plugin_dir().join(format!("{PLUGIN}.sock")),
        &root.join("plugin-mounts"),
    )
    .unwrap();
    for v in PLUGIN_VOLUMES {
        plugin.add_volume(v, &[]);
    }
    // The operator creates the local volumes (tmpfs); tasks only name them.
    let local = LocalDriver::new(job.local_root(), Arc::new(RealHost));
    for v in LOCAL_VOLUMES {
        let opts = VolumeOpts::parse_lists(&["type=tmpfs,device=tmpfs,o=size=4m"]).unwrap();
        local.create(&VolumeName::new(v).unwrap(), &opts).unwrap();
    }
    let guard = Unmounter(root.clone());

    // The second process, then this one's workers, with faults injected meanwhile.
    let child_job = Job {
        process: 1,
        ..job.clone()
    };
    // It stays alive (holding its containers) until its stdin closes, after the chaos stops.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, child_job.to_json().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let child_stdin = child.stdin.take().unwrap();
    let child_stdout = BufReader::new(child.stdout.take().unwrap());
    let stop = AtomicBool::new(false);
    let (mut log, recovers) = std::thread::scope(|s| {
        let chaos_thread = s.spawn(|| chaos(&plugin, &job, &stop));
        let mut log = run_workers(&job);
        let line = child_stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split_once(LOG_MARK).map(|(_, j)| j.to_owned()));
        stop.store(true, Ordering::SeqCst);
        let recovers = chaos_thread.join().unwrap();
        drop(child_stdin);
        let status = child.wait().unwrap();
        let line = line.unwrap_or_else(|| {
            panic!("seed {seed}: the worker process gave no log ({status}); its stderr is above")
        });
        let child_log: Value = serde_json::from_str(&line).unwrap();
        log.extend(child_log.as_array().unwrap().iter().map(entry_from_json));
        (log, recovers)
    });
    plugin.clear_faults();
    // A Mount delayed past its deadline still takes effect, late: let it land first.
    std::thread::sleep(LATE_MOUNT + Duration::from_millis(100));
    // Each container belongs to one worker, so its entries are in order within the log.
    log.sort_by_key(|e| e.container.clone());
    let model = Model::replay(&log);
    let iso = job.isolator();
    let seen = check(&job, &iso, &plugin, &model, "after the workers");
    let ctx = format!("seed {seed} (rerun with DVDI_MODEL_SEED={seed})");
    let (_, _, retried_during_run) = check_pairing(&plugin, &ctx);

    // A later recover retries every remembered unmount. The agent's containers keep theirs;
    // the second process has exited, so the containers it held are released, whatever the
    // agent's list says (it names them all).
    let known: Vec<ContainerId> = model
        .live
        .keys()
        .map(|id| ContainerId::new(id).unwrap())
        .collect();
    let report = iso.recover(&known, &[]).unwrap();
    let mut after = Model {
        live: model.live.clone(),
        ..Model::replay(&[])
    };
    after.live.retain(|id, _| !id.contains("-p1-"));
    let dead = model.live.len() - after.live.len();
    assert_eq!(report.failed_unmounts, 0, "{ctx}: {report:?}");
    assert_eq!(
        report.retried_unmounts, seen.failed_unmounts,
        "{ctx}: {report:?}"
    );
    assert_eq!(
        report.kept_containers,
        after.live.len(),
        "{ctx}: {report:?}"
    );
    assert_eq!(report.cleaned_containers, dead, "{ctx}: {report:?}");
    check(&job, &iso, &plugin, &after, "after recover");

    // Cleaning up every live container releases everything.
    for id in after.live.keys() {
        iso.cleanup(&ContainerId::new(id).unwrap()).unwrap();
    }
    let empty = Model::replay(&[]);
    check(&job, &iso, &plugin, &empty, "after cleaning up everything");
    let inspection = iso.inspect().unwrap();
    assert!(
        inspection.containers.is_empty() && inspection.volumes.is_empty(),
        "{ctx}"
    );
    let (mounted, unmounted, _) = check_pairing(&plugin, &ctx);
    assert_eq!(
        mounted, unmounted,
        "{ctx}: every Mount id has exactly one Unmount"
    );
    for v in PLUGIN_VOLUMES {
        assert!(plugin.mount_ids(v).is_empty(), "{ctx}: {v}");
    }
    for v in LOCAL_VOLUMES {
        assert!(!mounted_path(&job, v), "{ctx}: {v} still mounted");
    }
    drop(guard);
    let summary = format!(
        "seed {seed}: {} operations ({} prepares ok, {} failed ({} on a Mount past its deadline), {} cleanups), {} plugin mounts, \
         {} unmounts failed and were retried by a later prepare, {} were still remembered and retried by recover, {} containers live after the workers ({} of them held by the exited second process and released by recover), {} recovers while the workers ran (the longest took {} ms)",
        log.len(),
        model.prepares_ok,
        model.prepares_failed,
        log.iter()
            .filter(|e| e.prepare && e.error.contains("timed out"))
            .count(),
        model.cleanups,
        mounted,
        retried_during_run,
        report.retried_unmounts,
        model.live.len(),
        dead,
        recovers.0,
        recovers.1.as_millis()
    );
    (log.len(), summary)
}

fn mounted_path(job: &Job, volume: &str) -> bool {
    mounted(&job.local_root().join(volume).join("_data"))
}

/// Lazily unmounts whatever a failed run left under its temp dir.
struct Unmounter(PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        for m in dvdi::mountinfo::read_self().unwrap_or_default() {
            if m.mount_point.starts_with(&self.0) {
                let _ = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

#[test]
fn child_entry() {
    if let Ok(job) = std::env::var(CHILD_VAR) {
        let job = Job::from_json(&serde_json::from_str(&job).unwrap());
        let log: Vec<Value> = run_workers(&job).iter().map(entry_to_json).collect();
        println!("\n{LOG_MARK}{}", Value::from(log));
        // Alive, holding its containers, until the test closes our stdin.
        std::io::stdout().flush().unwrap();
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    }
}

#[test]
fn prepare_and_cleanup_from_many_threads_and_two_processes_match_the_model() {
    if !require_root("prepare_and_cleanup_from_many_threads_and_two_processes_match_the_model") {
        return;
    }
    let ops = std::env::var("DVDI_MODEL_OPS")
        .ok()
        .map(|v| v.parse().expect("DVDI_MODEL_OPS: a number"))
        .unwrap_or(DEFAULT_OPS);
    let seeds: Vec<u64> = match std::env::var("DVDI_MODEL_SEED") {
        Ok(s) => vec![s.parse().expect("DVDI_MODEL_SEED: a number")],
        Err(_) => {
            // Four fixed seeds, and a new one every run (printed, so a failure can be rerun).
            let fresh = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            DEFAULT_SEEDS.iter().copied().chain([fresh]).collect()
        }
    };
    let mut total = 0;
    for &seed in &seeds {
        eprintln!("model: seed {seed} (rerun with DVDI_MODEL_SEED={seed})");
        let (n, summary) = run_seed(seed, ops);
        eprintln!("model: {summary}");
        total += n;
    }
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    eprintln!(
        "model: {total} operations, {} seeds checked, seeds: {}",
        seeds.len(),
        list.join(", ")
    );
}
