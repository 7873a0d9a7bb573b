//! What loading the cdylib and creating one handle adds to its host's resident memory: a fresh
//! process (this binary, `--rss-probe LIB CONFIG`) reads `VmRSS` before `dlopen` and after
//! `dvdi_isolator_new`, and prints the difference in KiB.

use std::path::Path;
use std::process::Command;

use crate::stats::{median_f64, mib, Row, Target};
use dvdi_tests::capi;

fn vm_rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The probe itself (runs in the fresh child process).
pub fn probe(lib: &Path, config_json: &str) -> ! {
    let before = vm_rss_kib();
    let api = capi::load(lib).expect("load the cdylib");
    api.discard_logs();
    let handle = api.new_isolator(config_json).expect("isolator");
    let after = vm_rss_kib();
    println!("{}", after - before);
    drop(handle);
    std::process::exit(0)
}

pub fn measure(lib: &Path, config_json: &str, probes: usize) -> Vec<Row> {
    let exe = std::env::current_exe().expect("current exe");
    let deltas: Vec<f64> = (0..probes)
        .map(|_| {
            let out = Command::new(&exe)
                .arg("--rss-probe")
                .arg(lib)
                .arg(config_json)
                .output()
                .expect("run the RSS probe");
            assert!(out.status.success(), "RSS probe failed: {out:?}");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("probe output")
        })
        .collect();
    let delta = median_f64(&deltas);
    vec![Row::judged(
        "cdylib loaded + one handle: VmRSS added to a fresh host process",
        (delta, mib(delta)),
        (2048.0, mib(2048.0)),
        Target::AtMost,
    )]
}
