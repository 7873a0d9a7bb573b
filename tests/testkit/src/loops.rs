//! Loop devices as the tests look at them: which ones back a file, and that list once the
//! detaches the kernel deferred have happened.

use std::path::Path;
use std::time::{Duration, Instant};

/// Loop devices (`loopN`) whose backing file (`/sys/block/loopN/loop/backing_file`) is one
/// `wanted` accepts.
pub fn backed_by(wanted: impl Fn(&Path) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        if wanted(Path::new(backing.trim_end())) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// `list()` once the detaches the kernel deferred are done (waiting up to 15 s; 5 s was seen
/// to pass by a few hundred ms on a loaded 2-CPU machine in the crash workspace): a test process
/// that made its own mount namespace while a volume was mounted keeps a copy of the mount, so
/// `LOOP_CLR_FD` only sets autoclear and the device goes when that process exits. A device
/// still there without autoclear is a real leak: the list is returned at once.
pub fn settled<T: AsRef<Path>>(mut list: impl FnMut() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let loops = list();
        let deferred = loops.iter().all(|dev| {
            let name = dev
                .as_ref()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            name.and_then(|n| {
                std::fs::read_to_string(format!("/sys/block/{n}/loop/autoclear")).ok()
            })
            .is_some_and(|v| v.trim() == "1")
        });
        if loops.is_empty() || !deferred || Instant::now() > deadline {
            return loops;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
