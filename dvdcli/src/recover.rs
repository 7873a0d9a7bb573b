//! `dvdcli recover [--json]`: the isolator's recover for `dvdcli exec` holders only, on the
//! checkpoint `DVDI_CHECKPOINT_DIR` — safe while the agent runs (agent containers and the
//! volumes they hold are left alone). Prints a short report; exit status 1 when something it
//! tried failed (it is remembered for the next try).

use dvdi::ExecRecoverReport;

use crate::isolator_env::isolator_from_env;
use crate::output::emit;

pub fn run(json: bool) -> anyhow::Result<()> {
    let isolator = isolator_from_env()?;
    let report = isolator.recover_exec()?;
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&text(&report))?;
    }
    if !report.is_clean() {
        anyhow::bail!(
            "recover: {} unmount(s) failed, {} other error(s)",
            report.failed_unmounts,
            report.errors.len()
        );
    }
    Ok(())
}

fn text(r: &ExecRecoverReport) -> String {
    let ids: Vec<&str> = r.reaped_containers.iter().map(|c| c.as_str()).collect();
    let mut out = format!(
        "reaped {} dead dvdcli exec container(s){}\n",
        ids.len(),
        if ids.is_empty() {
            String::new()
        } else {
            format!(": {}", ids.join(", "))
        }
    );
    out += &format!(
        "rebuilt {} damaged volume record(s); moved {} damaged record(s) aside\n",
        r.rebuilt_volume_records,
        r.moved_aside.len()
    );
    out += &format!(
        "dropped {} dead holder(s); unmounted {} volume(s); retried {} failed unmount(s), {} still failing\n",
        r.dropped_holders, r.unmounted_volumes, r.retried_unmounts, r.failed_unmounts
    );
    out += &format!("removed {} stale temp file(s)\n", r.removed_temp_files);
    out += &format!(
        "left alone: {} agent container(s), {} running dvdcli exec(s), {} damaged record(s) nobody can attribute\n",
        r.agent_containers,
        r.live_exec_containers,
        r.unattributed_records.len()
    );
    for e in &r.errors {
        out += &format!("error: {e}\n");
    }
    out
}
