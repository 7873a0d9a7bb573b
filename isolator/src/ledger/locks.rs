//! Locks over ledger entries, for threads of this process and for other processes.
//!
//! - The **ledger lock** (`locks/ledger.lock`): every operation holds it shared; `recover` holds
//!   it exclusive, so it sees and repairs a ledger nobody else is changing (`dvdcli exec` in a
//!   shell shares the checkpoint dir with the agent).
//! - A **key lock** per volume (`locks/volumes/<driver>/<stem>.lock`) and per container
//!   (`locks/containers/<stem>.lock`): operations on the same volume are serialized, different
//!   volumes proceed in parallel; a plugin call holds only its own volume's lock.
//!
//! Each lock is an in-process part (a condition variable over the set of held keys, or an
//! `RwLock`) taken first, then a `flock(2)` on the lock file; the ledger lock's `flock` is
//! taken through a turnstile so that a waiting `recover` is not starved by shared holders in
//! other processes. Lock order: ledger, container,
//! then at most one volume at a time — so no two operations can wait on each other in a cycle.
//! Lock files are never deleted: unlinking a lock file while another process waits on it would
//! let a third process lock a new file of the same name.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use nix::fcntl::{Flock, FlockArg};

/// The in-process half of the locks, shared by every operation of one `Ledger`.
#[derive(Debug, Default)]
pub struct LockTable {
    held: Mutex<HashSet<PathBuf>>,
    released: Condvar,
    ledger: RwLock<()>,
}

fn lock_file(path: &Path, how: FlockArg) -> io::Result<Flock<File>> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
    };
    // The directory exists but for a key's first lock: make it only then.
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            open()?
        }
        other => other?,
    };
    Flock::lock(file, how).map_err(|(_, errno)| io::Error::from(errno))
}

/// A held key lock; released on drop.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    table: &'a LockTable,
    path: PathBuf,
    file: Option<Flock<File>>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.file.take());
        let mut held = self.table.lock_held();
        held.remove(&self.path);
        self.table.released.notify_all();
    }
}

/// The held ledger lock, shared or exclusive; released on drop.
#[derive(Debug)]
pub enum LedgerGuard<'a> {
    Shared(RwLockReadGuard<'a, ()>, Flock<File>),
    Exclusive(RwLockWriteGuard<'a, ()>, Flock<File>),
}

impl LockTable {
    fn lock_held(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the key whose lock file is `path` (the file names the key).
    pub fn key(&self, path: PathBuf) -> io::Result<KeyGuard<'_>> {
        {
            let mut held = self.lock_held();
            while held.contains(&path) {
                held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
            }
            held.insert(path.clone());
        }
        let mut guard = KeyGuard {
            table: self,
            path,
            file: None,
        };
        // On error the guard's drop gives the in-process part back.
        guard.file = Some(lock_file(&guard.path, FlockArg::LockExclusive)?);
        Ok(guard)
    }

    /// Holds the ledger lock shared (every operation but `recover`).
    pub fn shared(&self, path: &Path) -> io::Result<LedgerGuard<'_>> {
        let inner = self.ledger.read().unwrap_or_else(|e| e.into_inner());
        let file = through_turnstile(path, FlockArg::LockShared)?;
        Ok(LedgerGuard::Shared(inner, file))
    }

    /// Holds the ledger lock exclusive (`recover`).
    pub fn exclusive(&self, path: &Path) -> io::Result<LedgerGuard<'_>> {
        let inner = self.ledger.write().unwrap_or_else(|e| e.into_inner());
        let file = through_turnstile(path, FlockArg::LockExclusive)?;
        Ok(LedgerGuard::Exclusive(inner, file))
    }
}

/// `flock` gives a waiting exclusive lock no priority: shared holders in other processes
/// that overlap (threads of a busy `dvdcli exec` host, or of the agent) keep it waiting for as
/// long as they keep coming — the test below saw `recover` wait 45 s. So the ledger lock is
/// taken through a turnstile, `<ledger lock>.turnstile`, held exclusive only while waiting for
/// the ledger lock: a waiting `recover` holds it, so no new shared holder gets in, and it gets
/// the ledger lock once the current holders are done. (The in-process `RwLock` already
/// prefers writers.)
fn through_turnstile(path: &Path, how: FlockArg) -> io::Result<Flock<File>> {
    let turnstile = lock_file(&path.with_extension("turnstile"), FlockArg::LockExclusive)?;
    let file = lock_file(path, how)?;
    drop(turnstile);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn same_key_is_serialized_across_threads_different_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(LockTable::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (table, inside, most) = (table.clone(), inside.clone(), most.clone());
                let path = dir.path().join("locks/v/a.lock");
                std::thread::spawn(move || {
                    let _g = table.key(path).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let a = table.key(dir.path().join("a.lock")).unwrap();
        let b = table.key(dir.path().join("b.lock")).unwrap();
        drop((a, b));
    }

    #[test]
    fn flock_excludes_another_open_file_description() {
        let dir = tempfile::tempdir().unwrap();
        let table = LockTable::default();
        let path = dir.path().join("k.lock");
        let _g = table.key(path.clone()).unwrap();
        // What another process would do.
        let other = File::open(&path).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
    }

    #[test]
    fn shared_ledger_locks_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let table = LockTable::default();
        let path = dir.path().join("ledger.lock");
        let a = table.shared(&path).unwrap();
        let b = table.shared(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop((a, b));
        let _x = table.exclusive(&path).unwrap();
    }

    #[test]
    fn recover_is_not_starved_by_a_stream_of_shared_holders_in_other_processes() {
        // Each LockTable stands for a process: only the flocks are shared between them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/ledger.lock");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams: Vec<_> = (0..4)
            .map(|i| {
                let (path, stop) = (path.clone(), stop.clone());
                std::thread::spawn(move || {
                    let table = LockTable::default();
                    std::thread::sleep(Duration::from_millis(i * 2));
                    // Always at least one shared holder: the holds overlap.
                    while !stop.load(Ordering::SeqCst) {
                        let _g = table.shared(&path).unwrap();
                        std::thread::sleep(Duration::from_millis(8));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        let recover = LockTable::default();
        let start = std::time::Instant::now();
        let guard = recover.exclusive(&path).unwrap();
        let waited = start.elapsed();
        drop(guard);
        stop.store(true, Ordering::SeqCst);
        for s in streams {
            s.join().unwrap();
        }
        assert!(
            waited < Duration::from_millis(500),
            "the exclusive lock waited {waited:?} behind shared holders"
        );
    }
}
