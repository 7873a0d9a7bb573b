//! The performance targets, measured and printed as one table (never a timed test): each of
//! our figures next to its reference, measured side by side in the same run (interleaved),
//! medians over repeated runs, so the ratios survive a noisy shared machine.
//!
//! - `dvdcli mount` + `unmount` as processes vs two starts of a trivial static binary plus the
//!   same plugin calls in-process; `dvdcli`'s peak RSS per invocation.
//! - Isolator prepare + cleanup of one volume through the C ABI (`dlopen` of
//!   `libdvdi_ffi.so`) vs the bare plugin calls it needs plus one bind mount and umount.
//! - 64 prepares from 64 threads against a plugin taking 50 ms per call vs one prepare; the
//!   same volume from 64 threads (one Mount).
//! - Recover of 100 / 1,000 / 10,000 checkpointed containers.
//! - The cdylib's resident memory in a fresh host process.
//! - A CSI volume's prepare + cleanup through the C ABI against the CSI test plugin, next to
//!   the `dvdi-csi` program run directly and the bare CSI calls in-process (`csi.rs`).
//!
//! Runs as root: it makes itself a private mount namespace and puts the checkpoint on a private
//! tmpfs, as in production (`/var/run` is a tmpfs). Every Docker plugin is the testkit's
//! in-process `TestPlugin` over a Unix socket; the CSI plugin is `dvdi-csi-test-plugin`, a child
//! process.
//!
//! Usage: `dvdi-bench [--quick] [--runs N] [--only cli|isolator|parallel|recover|rss|csi]
//! [--dvdcli PATH]` (build with `--release`; `scripts/bench.sh`). `--only` runs one part, for
//! profiling; `--dvdcli` measures that binary instead of the `dvdcli` next to this one.

mod cli;
mod csi;
mod isolator;
mod rss;
mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use dvdi::discovery::PluginAddr;
use dvdi::plugin::PluginClient;
use dvdi::{ClientConfig, DriverName, VolumeDriver, VolumeName};
use dvdi_testkit::plugin::{PluginOptions, TestPlugin};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use stats::{median, us, Row};

/// What every measurement shares.
pub struct Env {
    /// The benchmark's temp dir.
    pub dir: PathBuf,
    /// Where the plugins' sockets are (`DVDI_PLUGIN_DIRS`).
    pub plugin_dir: PathBuf,
    /// A private tmpfs for the isolator checkpoints.
    pub checkpoint: PathBuf,
    pub dvdcli: PathBuf,
    pub ffi: PathBuf,
    /// The instant plugin, driver `bench`.
    pub plugin: TestPlugin,
    /// An in-process client of it making a new connection per call: the references'
    /// "bare round trips", as a plain client of the protocol makes them.
    pub client: PluginClient,
    /// The same client keeping its connection between calls, as ours do (`dvdi::http`'s
    /// *Kept connections*): the reference of the rows that show our own overhead alone.
    pub kept_client: PluginClient,
}

struct Plan {
    cli_runs: usize,
    isolator_runs: usize,
    parallel_rounds: usize,
    recover_sizes: Vec<usize>,
    recover_reps: usize,
    rss_probes: usize,
    csi_runs: usize,
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe.parent().expect("bin dir").join(name);
    if !path.exists() {
        eprintln!(
            "dvdi-bench: {} is missing: build it first (scripts/bench.sh does)",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

/// A private mount namespace (nothing we mount is seen outside, and it all goes away with
/// us) and a private tmpfs at `dir`. Must run before any thread starts: a mount namespace
/// belongs to a thread, and threads started later inherit it.
fn isolate_mounts(dir: &Path) -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    std::fs::create_dir_all(dir).map_err(|_| nix::Error::EIO)?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-probe") {
        let (Some(lib), Some(config)) = (args.get(i + 1), args.get(i + 2)) else {
            eprintln!("usage: dvdi-bench --rss-probe LIB CONFIG_JSON");
            std::process::exit(2);
        };
        rss::probe(Path::new(lib), config);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: Option<usize> = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let part = |name: &str| match only.as_deref() {
        Some(o) => o == name,
        None => true,
    };
    let plan = if quick {
        Plan {
            cli_runs: runs.unwrap_or(10),
            isolator_runs: runs.unwrap_or(20),
            parallel_rounds: 1,
            recover_sizes: vec![100, 1000],
            recover_reps: 1,
            rss_probes: 3,
            csi_runs: runs.unwrap_or(10),
        }
    } else {
        Plan {
            cli_runs: runs.unwrap_or(300),
            isolator_runs: runs.unwrap_or(1000),
            parallel_rounds: 5,
            recover_sizes: vec![100, 1000, 10_000],
            recover_reps: 5,
            rss_probes: 9,
            csi_runs: runs.unwrap_or(300),
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("dvdi-bench: needs root (a private mount namespace, a tmpfs, bind mounts)");
        std::process::exit(1);
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let checkpoint = dir.join("checkpoint");
    if let Err(e) = isolate_mounts(&checkpoint) {
        eprintln!("dvdi-bench: cannot set up a private mount namespace and tmpfs: {e}");
        std::process::exit(1);
    }
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir(&plugin_dir).expect("plugin dir");
    let socket = plugin_dir.join("bench.sock");
    let plugin = TestPlugin::start_with(
        &socket,
        &dir.join("mnt"),
        PluginOptions {
            keep_calls: false,
            ..PluginOptions::default()
        },
    )
    .expect("plugin");
    let kept_client = PluginClient::at(
        DriverName::new("bench").expect("name"),
        PluginAddr::Unix(socket),
        &ClientConfig::default(),
    );
    let client = kept_client.clone().without_kept_connections();
    let dvdcli = match args.iter().position(|a| a == "--dvdcli") {
        Some(i) => PathBuf::from(args.get(i + 1).expect("--dvdcli PATH")),
        None => sibling("dvdcli"),
    };
    let env = Env {
        dvdcli,
        ffi: sibling("libdvdi_ffi.so"),
        dir,
        plugin_dir,
        checkpoint: checkpoint.clone(),
        plugin,
        client,
        kept_client,
    };

    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();

    // The instant plugin's own cost per call, seen from a client in this process.
    let vol = VolumeName::new("probe").expect("name");
    env.client
        .create(&vol, &Default::default())
        .expect("create");
    let calls = 200.max(plan.isolator_runs);
    for (name, client) in [
        (
            "instant test plugin: one call (Get) in-process, round trip",
            &env.client,
        ),
        ("  … on a kept connection", &env.kept_client),
    ] {
        let gets: Vec<_> = (0..calls)
            .map(|_| {
                let t = Instant::now();
                client.get(&vol).expect("get");
                t.elapsed()
            })
            .collect();
        rows.push(Row::info(name, us(median(&gets)), String::new()));
    }

    if part("cli") {
        rows.extend(cli::measure(&env, plan.cli_runs));
    }
    let api = dvdi_tests::capi::load(&env.ffi).expect("load libdvdi_ffi.so");
    api.discard_logs();
    if part("isolator") {
        rows.extend(isolator::prepare_cleanup(&env, &api, plan.isolator_runs));
    }
    if part("parallel") {
        rows.extend(isolator::concurrency(&env, &api, plan.parallel_rounds));
    }
    if part("recover") {
        rows.extend(isolator::recover(
            &env,
            &api,
            &plan.recover_sizes,
            plan.recover_reps,
        ));
    }
    if part("csi") {
        rows.extend(csi::prepare_cleanup(&env, &api, plan.csi_runs));
    }
    let rss_config = serde_json::json!({
        "checkpoint_dir": env.checkpoint.join("rss"),
        "plugin_dirs": env.plugin_dir,
    })
    .to_string();
    if part("rss") {
        rows.extend(rss::measure(&env.ffi, &rss_config, plan.rss_probes));
    }

    println!(
        "dvdi-bench{}: medians; checkpoints on a private tmpfs; plugins: the testkit's TestPlugin over a Unix socket; CSI: dvdi-csi-test-plugin",
        if quick { " --quick (few runs: figures are rough)" } else { "" }
    );
    println!("dvdcli: {}", env.dvdcli.display());
    println!(
        "runs: dvdcli {}, isolator {}, parallel rounds {}, recover repeats {}, RSS probes {}, CSI {}",
        plan.cli_runs,
        plan.isolator_runs,
        plan.parallel_rounds,
        plan.recover_reps,
        plan.rss_probes,
        plan.csi_runs
    );
    println!(
        "ours and reference: medians; ratio: the median of per-iteration (per-round) ratios of \
         ours to its reference measured back to back, except for the recover rows"
    );
    println!();
    let all = stats::print_table(&rows);
    println!();
    println!(
        "{} ({:.0} s)",
        if all {
            "every target met"
        } else {
            "some targets missed (FAIL rows)"
        },
        started.elapsed().as_secs_f64()
    );
    // The plugins go first (`env`), then the checkpoint's tmpfs, so that the temp dir's removal
    // does not stop at a busy mount point and leave the dir behind.
    drop(env);
    if let Err(e) = nix::mount::umount2(&checkpoint, nix::mount::MntFlags::MNT_DETACH) {
        eprintln!("dvdi-bench: unmounting {}: {e}", checkpoint.display());
    }
}
