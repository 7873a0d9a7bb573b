//! Benchmarks that print their figures (never a timed test): `dvdcli mount` + `unmount` as
//! processes against an instant plugin, next to the same plugin calls made in-process. The
//! ratio between them is the CLI's own overhead. Medians over repeated runs, side by side in
//! one run, so the figures survive a noisy shared machine.
//!
//! Usage: `dvdi-bench [--quick] [--runs N]` (build with `--release` for real figures).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dvdi::discovery::PluginAddr;
use dvdi::plugin::PluginClient;
use dvdi::{ClientConfig, DriverName, VolumeDriver, VolumeName, VolumeOpts};
use dvdi_testkit::plugin::{PluginOptions, TestPlugin};
use nix::sys::resource::{getrusage, UsageWho};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe.parent().expect("bin dir").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first",
        path.display()
    );
    path
}

fn run_dvdcli(dvdcli: &Path, plugin_dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(dvdcli)
        .args(args)
        .env_clear()
        .env("DVDI_PLUGIN_DIRS", plugin_dir)
        .stdout(Stdio::null())
        .status()
        .expect("run dvdcli");
    let took = started.elapsed();
    assert!(status.success(), "dvdcli {args:?} failed");
    took
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 10 } else { 300 });

    let dir = tempfile::tempdir().expect("tempdir");
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).expect("plugin dir");
    let socket = plugin_dir.join("bench.sock");
    let options = PluginOptions {
        keep_calls: false,
        ..PluginOptions::default()
    };
    let _plugin =
        TestPlugin::start_with(&socket, &dir.path().join("mnt"), options).expect("plugin");
    let dvdcli = sibling_bin("dvdcli");

    let volume = "bench-vol";
    let mount_args = ["mount", "--volumedriver=bench", "--volumename", volume];
    let unmount_args = ["unmount", "--volumedriver=bench", "--volumename", volume];

    // In-process client making exactly the calls dvdcli makes.
    let client = PluginClient::at(
        DriverName::new("bench").expect("name"),
        PluginAddr::Unix(socket.clone()),
        &ClientConfig::default(),
    );
    let vol = VolumeName::new(volume).expect("volume");
    client.create(&vol, &VolumeOpts::new()).expect("create");

    // Warm up both paths (page cache, socket).
    for _ in 0..3 {
        run_dvdcli(&dvdcli, &plugin_dir, &mount_args);
        run_dvdcli(&dvdcli, &plugin_dir, &unmount_args);
    }

    let (mut cli_mount, mut cli_unmount, mut lib_mount, mut lib_unmount, mut lib_one_call) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut spawn_true = vec![];
    for _ in 0..runs {
        // Interleaved, so both see the same machine load.
        cli_mount.push(run_dvdcli(&dvdcli, &plugin_dir, &mount_args));
        cli_unmount.push(run_dvdcli(&dvdcli, &plugin_dir, &unmount_args));

        let t = Instant::now();
        client.activate().expect("activate");
        client.get(&vol).expect("get");
        client.mount(&vol, "dvdcli").expect("mount");
        lib_mount.push(t.elapsed());
        let t = Instant::now();
        client.get(&vol).expect("get");
        client.unmount(&vol, "dvdcli").expect("unmount");
        lib_unmount.push(t.elapsed());
        let t = Instant::now();
        client.get(&vol).expect("get");
        lib_one_call.push(t.elapsed());
        let t = Instant::now();
        let ok = Command::new("/bin/true")
            .env_clear()
            .status()
            .expect("spawn /bin/true");
        spawn_true.push(t.elapsed());
        assert!(ok.success());
    }
    let peak_rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();

    let (cm, cu, lm, lu) = (
        median(cli_mount),
        median(cli_unmount),
        median(lib_mount),
        median(lib_unmount),
    );
    println!("dvdcli benchmark: {runs} runs, medians; instant test plugin over a Unix socket");
    println!(
        "plugin round trip (one Get, in-process):              {}",
        fmt(median(lib_one_call))
    );
    println!(
        "{:<38} {:>12} {:>22} {:>8}",
        "measurement", "dvdcli", "in-process calls", "ratio"
    );
    let row = |name: &str, cli: Duration, lib: Duration| {
        println!(
            "{:<38} {:>12} {:>22} {:>7.1}x",
            name,
            fmt(cli),
            fmt(lib),
            cli.as_secs_f64() / lib.as_secs_f64()
        );
    };
    row("mount (Activate, Get, Mount)", cm, lm);
    row("unmount (Get, Unmount)", cu, lu);
    row("mount + unmount", cm + cu, lm + lu);
    let spawn = median(spawn_true);
    println!(
        "spawning /bin/true (a process start with no work):    {}",
        fmt(spawn)
    );
    row(
        "mount + unmount vs 2 spawns + calls",
        cm + cu,
        2 * spawn + lm + lu,
    );
    println!(
        "dvdcli peak RSS (largest of all invocations): {:.2} MiB",
        peak_rss_kib as f64 / 1024.0
    );
}
