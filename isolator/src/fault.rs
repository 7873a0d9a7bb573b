//! Crash fault points: named places in prepare, cleanup, recover and the durable-write helper
//! where the crash tests (`tests/crash`) kill the process with SIGKILL, to check that
//! `recover` in a fresh process turns whatever was left into a consistent state (SPEC §5).
//!
//! With the cargo feature `fault-points` off (every release build of `dvdcli` or `dvdi-ffi`
//! made with `-p`), [`point`] is an empty inline function and the points cost nothing. With it
//! on, [`point`] reads two variables once per process:
//!
//! - `DVDI_FAULT_POINT=NAME` or `NAME@N`: at the first (or N-th) time the point `NAME` is
//!   passed, the process raises SIGKILL on the spot.
//! - `DVDI_FAULT_TRACE=FILE`: every point passed is appended to FILE, one name a line (how the
//!   crash matrix learns which points a step reaches, and how often).
//!
//! Only the test crate `dvdi-crash` turns the feature on, and it is a workspace of its own
//! (`tests/crash`, excluded from the root workspace), so no build of the root workspace
//! (`cargo build --release` included) contains the points.

/// Every fault point, in the order a scenario meets them. A unit test checks that each is
/// used exactly once in the library's source, and that the source uses no other.
pub const POINTS: &[&str] = &[
    // prepare
    "prepare.validated",
    "join.mount_id_written",
    "csi.user_added",
    "csi.program_running",
    "csi.published",
    "join.mount_returned",
    "join.mount_recorded",
    "join.holder_added",
    "prepare.between_volumes",
    "prepare.between_targets",
    "prepare.before_prepared_write",
    // cleanup (and release in general)
    "cleanup.references_dropped",
    "release.holder_dropped",
    "unmount.before_call",
    "csi.before_unpublish",
    "csi.unpublished",
    "unmount.returned",
    "cleanup.before_record_delete",
    // recover
    "recover.between_released",
    "recover.before_unheld_unmount",
    "recover.after_unheld_unmount",
    // the durable-write helper
    "durable.temp_written",
    "durable.renamed",
];

/// I/O fault points: the durable steps (record and temp-file writes, directory changes, loop
/// devices, mkfs, mount) where the I/O fault matrix makes one call fail with an errno instead
/// of killing the process. With the feature on, `DVDI_FAULT_IO=NAME@N=ERRNO` (`ERRNO` one of
/// `ENOSPC`, `EIO`, `EROFS`, or a number; `@N` optional, default the first pass) makes the
/// N-th pass of `NAME` return that error; `DVDI_FAULT_IO_TRACE=FILE` appends the name of every
/// I/O point passed. A name may be used at several places (one step, several call sites).
pub const IO_POINTS: &[&str] = &[
    // the ledger's durable writes and removals (isolator/src/ledger/durable.rs)
    "durable.create_temp",
    "durable.write",
    "durable.fsync",
    "durable.rename",
    "durable.unlink",
    "durable.unlink_temp",
    "durable.dir_fsync",
    "ledger.mkdir",
    // the `local` driver's own state (isolator/src/local)
    "local.mkdir",
    "local.state_write",
    "local.image_create",
    // a CSI plugin's records on this host (isolator/src/csi)
    "csi.mkdir",
    "csi.state_write",
    // kernel calls made through the real host (isolator/src/sys.rs)
    "host.loop_attach",
    "host.mkfs",
    "host.mount",
    "host.mkdir",
];

/// An I/O fault point: `Ok(())`, or, with the feature on and `DVDI_FAULT_IO` naming this pass
/// of it, the named errno. Call it right before the step it stands for, with `?`.
#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn io(_name: &'static str) -> std::io::Result<()> {
    Ok(())
}

/// An I/O fault point: `Ok(())`, or, with the feature on and `DVDI_FAULT_IO` naming this pass
/// of it, the named errno. Call it right before the step it stands for, with `?`.
#[cfg(feature = "fault-points")]
pub fn io(name: &'static str) -> std::io::Result<()> {
    armed::io(name)
}

/// The errno an `ERRNO` word of `DVDI_FAULT_IO` names.
pub fn errno_named(word: &str) -> Option<i32> {
    match word {
        "ENOSPC" => Some(libc::ENOSPC),
        "EIO" => Some(libc::EIO),
        "EROFS" => Some(libc::EROFS),
        other => other.parse().ok().filter(|n| *n > 0),
    }
}

/// A crash point: kills the process here when `DVDI_FAULT_POINT` names it (feature on).
#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn point(_name: &'static str) {}

/// A crash point: kills the process here when `DVDI_FAULT_POINT` names it (feature on).
#[cfg(feature = "fault-points")]
pub fn point(name: &'static str) {
    armed::point(name)
}

#[cfg(feature = "fault-points")]
mod armed {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    struct Plan {
        target: Option<(String, usize)>,
        trace: Option<std::path::PathBuf>,
        io_target: Option<(String, usize, i32)>,
        io_trace: Option<std::path::PathBuf>,
    }

    static PLAN: OnceLock<Plan> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);
    static IO_HITS: AtomicUsize = AtomicUsize::new(0);

    /// `NAME` or `NAME@N` → (name, N ≥ 1).
    fn name_and_pass(v: &str) -> (String, usize) {
        match v.rsplit_once('@').map(|(n, k)| (n, k.parse::<usize>())) {
            Some((name, Ok(k))) if k >= 1 => (name.to_owned(), k),
            _ => (v.to_owned(), 1),
        }
    }

    fn append(path: &std::path::Path, name: &str) {
        // One write on an O_APPEND descriptor: lines from threads do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{name}\n").as_bytes());
        }
    }

    fn plan() -> &'static Plan {
        PLAN.get_or_init(|| {
            let target = std::env::var("DVDI_FAULT_POINT")
                .ok()
                .map(|v| name_and_pass(&v));
            let trace = std::env::var_os("DVDI_FAULT_TRACE").map(Into::into);
            let io_target = std::env::var("DVDI_FAULT_IO").ok().and_then(|v| {
                let (point, errno) = v.rsplit_once('=')?;
                let (name, nth) = name_and_pass(point);
                Some((name, nth, super::errno_named(errno)?))
            });
            let io_trace = std::env::var_os("DVDI_FAULT_IO_TRACE").map(Into::into);
            Plan {
                target,
                trace,
                io_target,
                io_trace,
            }
        })
    }

    pub(super) fn point(name: &'static str) {
        let plan = plan();
        if let Some(path) = &plan.trace {
            append(path, name);
        }
        if let Some((target, nth)) = &plan.target {
            if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    pub(super) fn io(name: &'static str) -> std::io::Result<()> {
        let plan = plan();
        if let Some(path) = &plan.io_trace {
            append(path, name);
        }
        if let Some((target, nth, errno)) = &plan.io_target {
            if target == name && IO_HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                return Err(std::io::Error::from_raw_os_error(*errno));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::POINTS;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every call of the form `needle"NAME"` in the library's source, with how often it
    /// appears.
    fn used(needle: &str) -> BTreeMap<String, usize> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut used = BTreeMap::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices(needle) {
                let rest = &text[at + needle.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                *used.entry(name.to_owned()).or_insert(0) += 1;
            }
        }
        used
    }

    #[test]
    fn every_listed_point_is_used_once_and_no_other_is_used() {
        let used = used("fault::point(\"");
        for name in POINTS {
            assert_eq!(used.get(*name), Some(&1), "{name} must appear once in src/");
        }
        for name in used.keys() {
            assert!(POINTS.contains(&name.as_str()), "{name} is not in POINTS");
        }
        let mut sorted: Vec<_> = POINTS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), POINTS.len(), "POINTS lists a name twice");
    }

    #[test]
    fn every_listed_io_point_is_used_and_no_other_is_used() {
        let used = used("fault::io(\"");
        for name in super::IO_POINTS {
            assert!(used.contains_key(*name), "{name} is never used in src/");
        }
        for name in used.keys() {
            assert!(
                super::IO_POINTS.contains(&name.as_str()),
                "{name} is not in IO_POINTS"
            );
        }
    }

    #[test]
    fn errno_words() {
        assert_eq!(super::errno_named("ENOSPC"), Some(libc::ENOSPC));
        assert_eq!(super::errno_named("EIO"), Some(libc::EIO));
        assert_eq!(super::errno_named("EROFS"), Some(libc::EROFS));
        assert_eq!(super::errno_named("13"), Some(13));
        assert_eq!(super::errno_named("nope"), None);
        assert_eq!(super::errno_named("0"), None);
    }
}
