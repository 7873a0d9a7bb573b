//! Locks over ledger entries, for threads of this process and for other processes.
//!
//! - The **ledger lock** (`locks/ledger.lock`): every operation holds it shared; `recover` holds
//!   it exclusive, so it sees and repairs a ledger nobody else is changing (`dvdcli exec` in a
//!   shell shares the checkpoint dir with the agent).
//! - A **key lock** per container and per volume: operations on the same key are serialized,
//!   different keys proceed in parallel; a plugin call holds only its own volume's lock.
//!
//! Each lock has an in-process part (an `RwLock` for the ledger, a condition variable over the
//! set of held key slots) taken first, then a lock other processes see:
//!
//! - the ledger lock is a `flock(2)` on `ledger.lock`, taken through a turnstile (see
//!   [`LockTable::shared`]) so that a waiting `recover` is not starved by shared holders in
//!   other processes. Both files are opened once, when the ledger is opened; the shared
//!   `flock` is taken by the first of this process's shared holders and released by the last.
//! - a key lock is an open-file-description byte-range lock (`F_OFD_SETLKW`, Linux ≥ 3.15) on
//!   one byte of `keys.lock`: the byte at the key's *slot*, a stable 64-bit FNV-1a hash of
//!   the key (containers in the lower half of the range, volumes in the upper half). No file
//!   per key: nothing to create per container, nothing that accumulates. Two keys whose
//!   slots collide are merely serialized.
//!
//! Lock order: ledger, container, then at most one volume at a time — so no two operations can
//! wait on each other in a cycle (a collision between a container and a volume slot cannot
//! happen: their halves of the range are disjoint).
//!
//! Every process sharing a checkpoint dir must take the locks this way; the layout of the
//! lock files is part of the ledger's format (a build that used one `flock` file per key would
//! not see these locks).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::ThreadId;

use crate::sys::{flock, ofd_lock, open_lock_file, FlockOp, OfdOp};

/// Which half of the slot range a key's lock lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Container,
    Volume,
}

/// The slot (byte offset in `keys.lock`) of a key: FNV-1a over its parts, each followed by a
/// NUL (no part contains one), folded into its kind's half of `[0, 2^62)`.
pub fn slot(kind: KeyKind, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(&[0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let half = h & ((1 << 61) - 1);
    match kind {
        KeyKind::Container => half,
        KeyKind::Volume => (1 << 61) | half,
    }
}

/// The lock files, open for the ledger's lifetime.
#[derive(Debug)]
struct Files {
    ledger: File,
    turnstile: File,
    keys: File,
}

/// The locks of one open ledger: its lock files and the in-process halves.
#[derive(Debug)]
pub struct LockTable {
    files: Files,
    /// The key slots held in this process, and by which thread.
    held: Mutex<Held>,
    released: Condvar,
    ledger: RwLock<()>,
    /// This process's shared holders of the ledger `flock`.
    shared_holders: Mutex<usize>,
}

/// The key slots held in this process, and how many threads wait for one to be released
/// (a release wakes them only when there are any: `notify_all` is a syscall either way).
#[derive(Debug, Default)]
struct Held {
    slots: HashMap<u64, ThreadId>,
    waiting: usize,
}

/// A held key lock; released on drop.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    table: &'a LockTable,
    slot: u64,
    /// Whether the byte-range lock was taken (the in-process part always is).
    locked: bool,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        if self.locked {
            // Cannot fail for a lock we hold; if it did, closing the ledger releases it.
            let _ = ofd_lock(&self.table.files.keys, self.slot, OfdOp::Unlock);
        }
        let mut held = self.table.lock_held();
        held.slots.remove(&self.slot);
        if held.waiting > 0 {
            self.table.released.notify_all();
        }
    }
}

/// The held ledger lock, shared or exclusive; released on drop.
#[derive(Debug)]
pub enum LedgerGuard<'a> {
    Shared(&'a LockTable, RwLockReadGuard<'a, ()>),
    Exclusive(&'a LockTable, RwLockWriteGuard<'a, ()>),
}

impl Drop for LedgerGuard<'_> {
    fn drop(&mut self) {
        match self {
            LedgerGuard::Shared(table, _) => {
                let mut n = table.lock_shared_holders();
                *n -= 1;
                if *n == 0 {
                    let _ = flock(&table.files.ledger, FlockOp::Unlock);
                }
            }
            LedgerGuard::Exclusive(table, _) => {
                let _ = flock(&table.files.ledger, FlockOp::Unlock);
            }
        }
    }
}

impl LockTable {
    /// Opens (creating) the lock files in `dir`, a directory only we can write.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            files: Files {
                ledger: open_lock_file(&dir.join("ledger.lock"))?,
                turnstile: open_lock_file(&dir.join("ledger.turnstile"))?,
                keys: open_lock_file(&dir.join("keys.lock"))?,
            },
            held: Mutex::default(),
            released: Condvar::new(),
            ledger: RwLock::default(),
            shared_holders: Mutex::new(0),
        })
    }

    fn lock_held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_shared_holders(&self) -> MutexGuard<'_, usize> {
        self.shared_holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the key at `slot` (see `slot`).
    ///
    /// A thread that asks again for a key it holds would wait for itself forever (an agent
    /// thread hung, every later operation on the key blocked behind it): that is refused with
    /// an error instead (`EDEADLK`), so such a bug fails one call and wedges nothing.
    pub fn key(&self, slot: u64) -> io::Result<KeyGuard<'_>> {
        let me = std::thread::current().id();
        {
            let mut held = self.lock_held();
            while let Some(owner) = held.slots.get(&slot) {
                if *owner == me {
                    return Err(io::Error::from_raw_os_error(libc::EDEADLK));
                }
                held.waiting += 1;
                held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
                held.waiting -= 1;
            }
            held.slots.insert(slot, me);
        }
        let mut guard = KeyGuard {
            table: self,
            slot,
            locked: false,
        };
        // On error the guard's drop gives the in-process part back.
        ofd_lock(&self.files.keys, slot, OfdOp::Wait)?;
        guard.locked = true;
        Ok(guard)
    }

    /// Holds the ledger lock shared (every operation but `recover`).
    ///
    /// `flock` gives a waiting exclusive lock no priority: shared holders in other processes
    /// that overlap (threads of a busy `dvdcli exec` host, or of the agent) keep it waiting
    /// for as long as they keep coming — the test below saw `recover` wait 45 s. So every
    /// shared holder passes a turnstile, `ledger.turnstile`, which a waiting `recover` holds
    /// exclusive: no new shared holder gets in, and `recover` gets the ledger lock once the
    /// current holders are done. (The in-process `RwLock` already prefers writers.)
    pub fn shared(&self) -> io::Result<LedgerGuard<'_>> {
        let inner = self.ledger.read().unwrap_or_else(|e| e.into_inner());
        flock(&self.files.turnstile, FlockOp::Exclusive)?;
        let taken = {
            let mut n = self.lock_shared_holders();
            let taken = if *n == 0 {
                flock(&self.files.ledger, FlockOp::Shared)
            } else {
                Ok(())
            };
            if taken.is_ok() {
                *n += 1;
            }
            taken
        };
        let _ = flock(&self.files.turnstile, FlockOp::Unlock);
        taken?;
        Ok(LedgerGuard::Shared(self, inner))
    }

    /// Holds the ledger lock exclusive (`recover`).
    pub fn exclusive(&self) -> io::Result<LedgerGuard<'_>> {
        let inner = self.ledger.write().unwrap_or_else(|e| e.into_inner());
        flock(&self.files.turnstile, FlockOp::Exclusive)?;
        let taken = flock(&self.files.ledger, FlockOp::Exclusive);
        let _ = flock(&self.files.turnstile, FlockOp::Unlock);
        taken?;
        Ok(LedgerGuard::Exclusive(self, inner))
    }
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
        let table = Arc::new(LockTable::open(dir.path()).unwrap());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let a = slot(KeyKind::Volume, &["d", "a"]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (table, inside, most) = (table.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let _g = table.key(a).unwrap();
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
        let a = table.key(a).unwrap();
        let b = table.key(slot(KeyKind::Volume, &["d", "b"])).unwrap();
        drop((a, b));
    }

    /// What another process would do: its own open file description of `keys.lock`.
    fn other_process_can_lock(dir: &Path, slot: u64) -> bool {
        let other = open_lock_file(&dir.join("keys.lock")).unwrap();
        ofd_lock(&other, slot, OfdOp::Try).is_ok()
    }

    #[test]
    fn a_key_lock_excludes_another_open_file_description_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let table = LockTable::open(dir.path()).unwrap();
        let s = slot(KeyKind::Container, &["c1"]);
        let g = table.key(s).unwrap();
        assert!(!other_process_can_lock(dir.path(), s));
        // Only that byte: another key is free.
        assert!(other_process_can_lock(
            dir.path(),
            slot(KeyKind::Container, &["c2"])
        ));
        drop(g);
        assert!(other_process_can_lock(dir.path(), s));
    }

    #[test]
    fn slots_are_stable_and_kinds_never_collide() {
        // The slot is part of the ledger's format: every build must compute the same one.
        // FNV-1a 64 of "c1\0" is 0xf686_3319_0d6f_4f3b (computed independently).
        assert_eq!(slot(KeyKind::Container, &["c1"]), 0x1686_3319_0d6f_4f3b);
        for parts in [&["a"][..], &["local", "data"][..], &[""][..]] {
            let c = slot(KeyKind::Container, parts);
            let v = slot(KeyKind::Volume, parts);
            assert!(c < 1 << 61 && (1 << 61..1 << 62).contains(&v), "{parts:?}");
        }
        // The parts are delimited: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            slot(KeyKind::Volume, &["ab", "c"]),
            slot(KeyKind::Volume, &["a", "bc"])
        );
    }

    #[test]
    fn shared_ledger_locks_coexist_and_the_last_one_releases() {
        let dir = tempfile::tempdir().unwrap();
        let table = LockTable::open(dir.path()).unwrap();
        let other_can_lock_exclusive = || {
            let other = File::open(dir.path().join("ledger.lock")).unwrap();
            flock(&other, FlockOp::TryExclusive).is_ok()
        };
        let a = table.shared().unwrap();
        let b = table.shared().unwrap();
        assert!(!other_can_lock_exclusive());
        drop(a);
        assert!(!other_can_lock_exclusive(), "b still holds it");
        drop(b);
        assert!(other_can_lock_exclusive());
        let _x = table.exclusive().unwrap();
        assert!(!other_can_lock_exclusive());
    }

    #[test]
    fn recover_is_not_starved_by_a_stream_of_shared_holders_in_other_processes() {
        // Each LockTable stands for a process: only the lock files are shared between them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams: Vec<_> = (0..4)
            .map(|i| {
                let (path, stop) = (path.clone(), stop.clone());
                std::thread::spawn(move || {
                    let table = LockTable::open(&path).unwrap();
                    std::thread::sleep(Duration::from_millis(i * 2));
                    // Always at least one shared holder: the holds overlap.
                    while !stop.load(Ordering::SeqCst) {
                        let _g = table.shared().unwrap();
                        std::thread::sleep(Duration::from_millis(8));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        let recover = LockTable::open(&path).unwrap();
        let start = std::time::Instant::now();
        let guard = recover.exclusive().unwrap();
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

    #[test]
    fn a_thread_taking_a_key_it_holds_gets_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let table = LockTable::open(dir.path()).unwrap();
        let at = slot(KeyKind::Volume, &["local", "v"]);
        let held = table.key(at).unwrap();
        let again = table.key(at).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EDEADLK), "{again}");
        // The refusal gave nothing away: the key is still held, and free once dropped.
        drop(held);
        drop(table.key(at).unwrap());
    }
}
