//! `dvdcli mount` + `unmount` as processes, next to what they cannot avoid: two process starts
//! of a trivial static binary and the same plugin calls made in-process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dvdi::plugin::PluginClient;
use dvdi::{VolumeDriver, VolumeName};

use crate::stats::{median, median_f64, mib, us, Row, Target};
use crate::Env;

/// The trivial program: returns at once. Linked statically, so its start costs no dynamic
/// loading — the cheapest process a caller like Mesos can run.
const STATIC_TRUE_C: &str = "int main(void) { return 0; }\n";

/// Builds the static trivial binary with the system C compiler (`gcc -static` needs
/// Debian's libc6-dev, which `scripts/setup.sh` installs).
pub fn build_static_true(dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("static-true.c");
    let bin = dir.join("static-true");
    std::fs::write(&src, STATIC_TRUE_C).map_err(|e| e.to_string())?;
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc -static failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

/// Runs a process to completion; its wall time and peak RSS (KiB, from `wait4`).
fn run(cmd: &mut Command) -> (Duration, i64) {
    let started = Instant::now();
    // Reaped below with wait4 (for its rusage), never with `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a benchmark process");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not waited for by anyone else (we never call child.wait).
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    (took, usage.ru_maxrss)
}

pub fn measure(env: &Env, runs: usize) -> Vec<Row> {
    let static_true = match build_static_true(&env.dir) {
        Ok(p) => p,
        Err(e) => return vec![Row::failed("dvdcli: trivial static binary", e)],
    };
    let volume = "cli-vol";
    let dvdcli = |args: &[&str]| {
        let mut c = Command::new(&env.dvdcli);
        c.args(args)
            .env_clear()
            .env("DVDI_PLUGIN_DIRS", &env.plugin_dir);
        c
    };
    let mount = ["mount", "--volumedriver=bench", "--volumename", volume];
    let unmount = ["unmount", "--volumedriver=bench", "--volumename", volume];
    let client: &PluginClient = &env.client;
    let vol = VolumeName::new(volume).expect("volume name");
    client.create(&vol, &Default::default()).expect("create");

    for _ in 0..3 {
        run(&mut dvdcli(&mount));
        run(&mut dvdcli(&unmount));
        run(&mut Command::new(&static_true));
    }
    let (mut cli, mut spawn, mut calls, mut ratios) = (vec![], vec![], vec![], vec![]);
    let mut peak_rss = 0;
    for _ in 0..runs {
        // Interleaved, so all three see the same machine load.
        let (m, rss_m) = run(&mut dvdcli(&mount));
        let (u, rss_u) = run(&mut dvdcli(&unmount));
        cli.push(m + u);
        peak_rss = peak_rss.max(rss_m).max(rss_u);

        let t = Instant::now();
        client.activate().expect("activate");
        client.get(&vol).expect("get");
        client.mount(&vol, "dvdcli").expect("mount");
        client.get(&vol).expect("get");
        client.unmount(&vol, "dvdcli").expect("unmount");
        calls.push(t.elapsed());

        let (a, _) = run(&mut Command::new(&static_true));
        let (b, _) = run(&mut Command::new(&static_true));
        spawn.push(a + b);
        ratios.push((m + u).as_secs_f64() / (a + b + calls[calls.len() - 1]).as_secs_f64());
    }
    let (cli, spawn, calls) = (median(&cli), median(&spawn), median(&calls));
    let reference = spawn + calls;
    vec![
        Row::judged(
            "`dvdcli mount` + `unmount` wall (ref: 2 static spawns + the 5 calls in-process)",
            (cli.as_secs_f64(), us(cli)),
            (reference.as_secs_f64(), us(reference)),
            Target::RatioAtMost(1.5),
        )
        .with_paired_ratio(median_f64(&ratios), 1.5),
        Row::info(
            "  └ reference = 2 static spawns + Activate, Get, Mount, Get, Unmount in-process",
            String::new(),
            format!("{} + {}", us(spawn), us(calls)),
        ),
        Row::judged(
            "`dvdcli` peak RSS, largest single invocation (wait4)",
            (peak_rss as f64, mib(peak_rss as f64)),
            (4096.0, mib(4096.0)),
            Target::AtMost,
        ),
    ]
}
