//! The isolator through its C ABI: prepare + cleanup of one volume next to the bare plugin
//! calls and bind it needs; 64 concurrent prepares against a slow plugin; recover of a large
//! checkpoint.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use dvdi::{VolumeDriver, VolumeName};
use dvdi_testkit::plugin::{PluginOptions, TestPlugin};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::stats::{median, median_f64, us, Row, Target};
use crate::Env;
use dvdi_tests::capi::{container_config_json, container_id_json, Api, Handle};

/// The slow plugin's time per call in the concurrency measurement.
const SLOW_CALL: Duration = Duration::from_millis(50);
const THREADS: usize = 64;

fn isolator_config(env: &Env, checkpoint: &Path) -> String {
    serde_json::json!({
        "checkpoint_dir": checkpoint,
        "plugin_dirs": env.plugin_dir,
        "default_driver": "bench",
    })
    .to_string()
}

fn volume_env<'a>(driver: &'a str, volume: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("DVDI_VOLUME_NAME", volume),
        ("DVDI_VOLUME_DRIVER", driver),
        // Relative: a bind target under the sandbox, as most tasks ask for.
        ("DVDI_VOLUME_CONTAINERPATH", "data"),
    ]
}

/// One `mount(MS_BIND)` + `umount` of a directory: what the launcher does per volume.
fn bind_once(src: &Path, dst: &Path) {
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind mount");
    umount2(dst, MntFlags::empty()).expect("umount bind");
}

pub fn prepare_cleanup(env: &Env, api: &Api, runs: usize) -> Vec<Row> {
    let handle = api
        .new_isolator(&isolator_config(env, &env.checkpoint.join("single")))
        .expect("isolator");
    let sandbox = env.dir.join("sandbox");
    let (src, dst) = (env.dir.join("bind-src"), env.dir.join("bind-dst"));
    for d in [&sandbox, &src, &dst] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let volume = "iso-vol";
    let vol = VolumeName::new(volume).expect("name");
    env.client
        .create(&vol, &Default::default())
        .expect("create");
    let config = container_config_json(&volume_env("bench", volume), &sandbox);

    let once = |i: usize, config: &str| {
        let id = container_id_json(&format!("pc-{i}"));
        let t = Instant::now();
        let launch = handle.prepare(&id, config).expect("prepare");
        handle.cleanup(&id).expect("cleanup");
        let took = t.elapsed();
        assert!(launch.is_some_and(|l| l.contains("\"mounts\"")));
        took
    };
    for i in 0..5 {
        once(i, &config);
    }
    #[derive(Default)]
    struct Samples {
        warm: Vec<Duration>,
        cold: Vec<Duration>,
        full: Vec<Duration>,
        made: Vec<Duration>,
        bind: Vec<Duration>,
        warm_ratio: Vec<f64>,
        cold_ratio: Vec<f64>,
        made_ratio: Vec<f64>,
    }
    let mut s = Samples::default();
    for i in 0..runs {
        // A volume this handle has mounted before (the common case on an agent) …
        let warm = once(1000 + i, &config);
        // … and one it has not seen yet: made, mounted and unmounted in the plugin first,
        // untimed, so that the plugin's own first-time costs (its mount point) are not ours.
        let cold_name = format!("cold-{i}");
        let cold_vol = VolumeName::new(&cold_name).expect("name");
        env.client
            .create(&cold_vol, &Default::default())
            .expect("create");
        env.client.mount(&cold_vol, "warm-up").expect("mount");
        env.client.unmount(&cold_vol, "warm-up").expect("unmount");
        let cold_config = container_config_json(&volume_env("bench", &cold_name), &sandbox);
        let cold = once(1_000_000 + i, &cold_config);
        // The protocol's sequence for a prepare and a cleanup, bare …
        let t = Instant::now();
        env.client.get(&vol).expect("get");
        env.client.mount(&vol, "reference").expect("mount");
        env.client.unmount(&vol, "reference").expect("unmount");
        let full = t.elapsed();
        // … and only the calls the warm prepare + cleanup make, made as ours makes them
        // (on a kept connection).
        let t = Instant::now();
        env.kept_client.mount(&vol, "reference").expect("mount");
        env.kept_client.unmount(&vol, "reference").expect("unmount");
        let made = t.elapsed();
        let t = Instant::now();
        bind_once(&src, &dst);
        let bind = t.elapsed();
        s.warm_ratio
            .push(warm.as_secs_f64() / (full + bind).as_secs_f64());
        s.cold_ratio
            .push(cold.as_secs_f64() / (full + bind).as_secs_f64());
        s.made_ratio
            .push(warm.as_secs_f64() / (made + bind).as_secs_f64());
        s.warm.push(warm);
        s.cold.push(cold);
        s.full.push(full);
        s.made.push(made);
        s.bind.push(bind);
    }
    let (warm, cold, full, made, bind) = (
        median(&s.warm),
        median(&s.cold),
        median(&s.full),
        median(&s.made),
        median(&s.bind),
    );
    vec![
        Row::judged(
            "isolator prepare + cleanup, 1 volume, C ABI (ref: Get, Mount, Unmount + 1 bind)",
            (warm.as_secs_f64(), us(warm)),
            ((full + bind).as_secs_f64(), us(full + bind)),
            Target::RatioAtMost(1.1),
        )
        .with_paired_ratio(median_f64(&s.warm_ratio), 1.1),
        Row::info(
            "  └ reference = Get, Mount, Unmount in-process + mount(MS_BIND) & umount",
            String::new(),
            format!("{} + {}", us(full), us(bind)),
        ),
        Row::info(
            "  └ ours makes Mount, Unmount (the volume was mounted by this handle before, so no Get) on a kept connection",
            String::new(),
            String::new(),
        ),
        Row::compared(
            "  … a volume this handle has not seen yet (ours makes Get, Mount, Unmount)",
            us(cold),
            us(full + bind),
            median_f64(&s.cold_ratio),
        ),
        Row::compared(
            "  … the bookkeeping: ours (warm) against the calls it makes, made the same way (Mount, Unmount on a kept connection + 1 bind)",
            us(warm),
            us(made + bind),
            median_f64(&s.made_ratio),
        ),
    ]
}

/// Prepares every id in `ids` (with its config) from its own thread, all released at once;
/// returns the wall time from the release to the last prepare's return.
fn prepare_in_parallel(handle: &Handle<'_>, work: &[(String, String)]) -> Duration {
    let barrier = Barrier::new(work.len() + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = work
            .iter()
            .map(|(id, config)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    handle.prepare(id, config).expect("parallel prepare");
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for th in threads {
            th.join().expect("prepare thread");
        }
        t.elapsed()
    })
}

fn cleanup_in_parallel(handle: &Handle<'_>, work: &[(String, String)]) {
    std::thread::scope(|s| {
        for (id, _) in work {
            s.spawn(move || handle.cleanup(id).expect("parallel cleanup"));
        }
    });
}

pub fn concurrency(env: &Env, api: &Api, rounds: usize) -> Vec<Row> {
    let options = PluginOptions {
        delay: SLOW_CALL,
        keep_calls: true,
        ..PluginOptions::default()
    };
    let slow = TestPlugin::start_with(
        &env.plugin_dir.join("slow.sock"),
        &env.dir.join("slow-mnt"),
        options,
    )
    .expect("slow plugin");
    let handle = api
        .new_isolator(&isolator_config(env, &env.checkpoint.join("parallel")))
        .expect("isolator");
    let sandbox = env.dir.join("sandbox-parallel");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    let work_for = |name: &str, volume: &str| {
        slow.add_volume(volume, &[]);
        (
            container_id_json(name),
            container_config_json(&volume_env("slow", volume), &sandbox),
        )
    };

    // Warm: the driver's first use in this process.
    let warm = [work_for("warm", "warm")];
    prepare_in_parallel(&handle, &warm);
    cleanup_in_parallel(&handle, &warm);

    let (mut ones, mut walls, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let one = [work_for(&format!("one-{round}"), &format!("one-{round}"))];
        let single = prepare_in_parallel(&handle, &one);
        cleanup_in_parallel(&handle, &one);
        let many: Vec<_> = (0..THREADS)
            .map(|i| work_for(&format!("par-{round}-{i}"), &format!("par-{round}-{i}")))
            .collect();
        let wall = prepare_in_parallel(&handle, &many);
        cleanup_in_parallel(&handle, &many);
        ones.push(single);
        walls.push(wall);
        ratios.push(wall.as_secs_f64() / single.as_secs_f64());
    }

    // The same volume from 64 containers at once: one Mount, one Unmount.
    let (mounts_before, unmounts_before) = (
        slow.count("VolumeDriver.Mount"),
        slow.count("VolumeDriver.Unmount"),
    );
    let same: Vec<_> = (0..THREADS)
        .map(|i| work_for(&format!("same-{i}"), "shared"))
        .collect();
    prepare_in_parallel(&handle, &same);
    let mounts = slow.count("VolumeDriver.Mount") - mounts_before;
    cleanup_in_parallel(&handle, &same);
    let unmounts = slow.count("VolumeDriver.Unmount") - unmounts_before;

    let (one, wall, ratio) = (median(&ones), median(&walls), median_f64(&ratios));
    let parallel = Row::judged(
        format!(
            "{THREADS} prepares of distinct volumes from {THREADS} threads, plugin {} ms/call (ref: one prepare)",
            SLOW_CALL.as_millis()
        ),
        (wall.as_secs_f64(), us(wall)),
        (one.as_secs_f64(), us(one)),
        Target::RatioAtMost(2.0),
    );
    vec![
        parallel.with_paired_ratio(ratio, 2.0),
        Row::judged(
            format!("the same volume from {THREADS} threads: Mount calls the plugin got"),
            (mounts as f64, mounts.to_string()),
            (1.0, "1".into()),
            Target::Exactly,
        ),
        Row::judged(
            format!("  … and Unmount calls after the {THREADS} cleanups"),
            (unmounts as f64, unmounts.to_string()),
            (1.0, "1".into()),
            Target::Exactly,
        ),
    ]
}

/// Recover after an agent restart with `n` checkpointed containers the agent still runs,
/// each holding its own volume: a fresh handle, timed `recover`, median over `reps`.
fn recover_once(env: &Env, api: &Api, n: usize, reps: usize) -> Duration {
    let checkpoint = env.checkpoint.join(format!("recover-{n}"));
    let config = isolator_config(env, &checkpoint);
    let sandbox = env.dir.join("sandbox-recover");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    {
        let handle = api.new_isolator(&config).expect("isolator");
        for i in 0..n {
            let volume = format!("rv-{n}-{i}");
            env.plugin.add_volume(&volume, &[]);
            handle
                .prepare(
                    &container_id_json(&format!("rc-{i}")),
                    &container_config_json(&volume_env("bench", &volume), &sandbox),
                )
                .expect("prepare for recover");
        }
    }
    let states = serde_json::Value::Array(
        (0..n)
            .map(|i| serde_json::json!({ "container_id": { "value": format!("rc-{i}") } }))
            .collect(),
    )
    .to_string();
    // A recover of a small checkpoint takes well under a millisecond, where scheduling noise
    // weighs most: the smaller the checkpoint, the more repeats (recover of running containers
    // changes nothing, so the same checkpoint serves every repeat).
    let reps = repeats_for(n, reps);
    let mut times = vec![];
    for _ in 0..reps {
        let handle = api.new_isolator(&config).expect("isolator");
        let t = Instant::now();
        let report = handle.recover(&states, "[]").expect("recover");
        times.push(t.elapsed());
        let report: serde_json::Value = serde_json::from_str(&report).expect("report");
        assert_eq!(report["kept_containers"], n, "{report}");
    }
    median(&times)
}

/// Repeats of a recover of `n` containers: `reps` at 10,000, proportionally more below (at
/// most 500).
pub fn repeats_for(n: usize, reps: usize) -> usize {
    reps.max(reps * 10_000 / n.max(1)).min(500)
}

pub fn recover(env: &Env, api: &Api, sizes: &[usize], reps: usize) -> Vec<Row> {
    let times: Vec<(usize, Duration)> = sizes
        .iter()
        .map(|&n| (n, recover_once(env, api, n, reps)))
        .collect();
    let per = |(n, t): (usize, Duration)| t.as_secs_f64() / n as f64;
    let mut rows: Vec<Row> = times
        .iter()
        .map(|&(n, t)| {
            let each = Duration::from_secs_f64(per((n, t)));
            Row::info(
                format!(
                    "recover, {n} checkpointed containers (fresh handle, all still running; median of {})",
                    repeats_for(n, reps)
                ),
                us(t),
                format!("{} per container", us(each)),
            )
        })
        .collect();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return rows;
    };
    rows.push(Row::judged(
        format!("recover, {} containers (ref: the 1 s limit)", last.0),
        (last.1.as_secs_f64(), us(last.1)),
        (1.0, "1 s".into()),
        Target::RatioAtMost(1.0),
    ));
    rows.push(Row::judged(
        format!(
            "recover growth: time per container at {} vs at {} (linear = 1)",
            last.0, first.0
        ),
        (per(last) * 1e6, us(Duration::from_secs_f64(per(last)))),
        (per(first) * 1e6, us(Duration::from_secs_f64(per(first)))),
        Target::RatioAtMost(2.0),
    ));
    // The same growth as an exponent: time ∝ n^k between the smallest and the largest size.
    if last.0 > first.0 {
        let k = (last.1.as_secs_f64() / first.1.as_secs_f64()).ln()
            / (last.0 as f64 / first.0 as f64).ln();
        rows.push(Row::info(
            format!(
                "  … as an exponent k, time ∝ n^k from {} to {} containers",
                first.0, last.0
            ),
            format!("{k:.2}"),
            "1 linear, 2 quadratic".into(),
        ));
    }
    rows
}
