//! `dvdcli inspect [--json]`: which containers hold which volumes and where they are mounted,
//! from the isolator's checkpoint (`DVDI_CHECKPOINT_DIR`).

use dvdi::Inspection;

use crate::isolator_env::isolator_from_env;
use crate::output::emit;

pub fn run(json: bool) -> anyhow::Result<()> {
    let isolator = isolator_from_env()?;
    // A dvdcli exec that was killed outright leaves its volumes to whoever looks next.
    let reaped = isolator.reap_dead_holders()?;
    for id in &reaped.reaped {
        eprintln!("dvdcli: released the volumes of {id}: its dvdcli exec is gone");
    }
    for e in &reaped.errors {
        eprintln!("dvdcli: warning: {e}");
    }
    for e in &reaped.repair.errors {
        eprintln!("dvdcli: warning: repairing the checkpoint: {e}");
    }
    let inspection = isolator.inspect()?;
    if json {
        return emit(&format!("{}\n", serde_json::to_string_pretty(&inspection)?));
    }
    emit(&table(&inspection))
}

fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn table(i: &Inspection) -> String {
    let mut out = format!("checkpoint: {}\n\nCONTAINERS\n", i.checkpoint_dir.display());
    let mut rows = vec![[
        "CONTAINER".to_owned(),
        "STATE".into(),
        "HOLDER".into(),
        "VOLUME".into(),
        "CONTAINER PATH".into(),
        "MOUNT POINT".into(),
    ]];
    for c in &i.containers {
        let holder = match (&c.holder, c.holder_alive) {
            (Some(h), Some(true)) => format!("pid {}", h.pid),
            (Some(h), _) => format!("pid {} (gone)", h.pid),
            (None, _) => "agent".into(),
        };
        for (n, v) in c.volumes.iter().enumerate() {
            let first = n == 0;
            rows.push([
                if first {
                    c.id.to_string()
                } else {
                    String::new()
                },
                if first { word(&c.state) } else { String::new() },
                if first { holder.clone() } else { String::new() },
                format!(
                    "{}/{}{}",
                    v.driver,
                    v.name,
                    if v.readonly { " (ro)" } else { "" }
                ),
                v.container_path.clone().unwrap_or_else(|| "-".into()),
                v.mountpoint
                    .as_ref()
                    .map(|p| shown(p))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    out += &render(&rows);
    out += "\nVOLUMES\n";
    let mut rows = vec![[
        "VOLUME".to_owned(),
        "STATE".into(),
        "MOUNT ID".into(),
        "MOUNT POINT".into(),
        "HOLDERS".into(),
        "FAILED UNMOUNTS".into(),
    ]];
    for v in &i.volumes {
        rows.push([
            format!("{}/{}", v.driver, v.name),
            word(&v.state),
            v.mount_id.clone().unwrap_or_else(|| "-".into()),
            v.mountpoint
                .as_ref()
                .map(|p| shown(p))
                .unwrap_or_else(|| "-".into()),
            v.holders
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(","),
            v.failed_unmounts.len().to_string(),
        ]);
    }
    out += &render(&rows);
    for p in &i.problems {
        out += &format!("problem: {}\n", dvdi::render::escape(p));
    }
    out
}

/// A mount point from the checkpoint, one line whatever the record holds: mount points are
/// checked when a plugin sends them, but a record may predate that or have been edited.
fn shown(path: &std::path::Path) -> String {
    dvdi::render::escape(&path.to_string_lossy()).to_string()
}

fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    out
}
