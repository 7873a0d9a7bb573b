//! The testkit's host calls: the only `unsafe` code in this crate, each block a single libc
//! call on values we own.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Wakes a thread blocked in `accept` on `listener`: after this, `accept` fails at once.
///
/// Used by the plugin server's shutdown, so it does not depend on the socket path still
/// existing (a test may have removed it to simulate a vanished plugin).
pub(crate) fn shut_down_listener(listener: &UnixListener) -> io::Result<()> {
    // SAFETY: the descriptor is owned by `listener`, which outlives this call; shutdown
    // changes the socket's state only and does not close or invalidate the descriptor.
    let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// SIGTERM and SIGINT, blocked in the calling thread (and in every thread it spawns later)
/// so that [`TerminationSignals::wait`] receives them synchronously.
pub struct TerminationSignals {
    set: libc::sigset_t,
}

impl TerminationSignals {
    /// Blocks SIGTERM and SIGINT. Call it before spawning any thread.
    pub fn block() -> io::Result<Self> {
        // SAFETY: an all-zero sigset_t is a valid value to hand to sigemptyset, which
        // initialises it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, exclusively borrowed sigset_t for each call.
        let rc = unsafe {
            libc::sigemptyset(&mut set)
                | libc::sigaddset(&mut set, libc::SIGTERM)
                | libc::sigaddset(&mut set, libc::SIGINT)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `set` is initialised above; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(TerminationSignals { set })
    }

    /// Waits until SIGTERM or SIGINT arrives and returns its number.
    pub fn wait(&self) -> io::Result<i32> {
        let mut signal: libc::c_int = 0;
        // SAFETY: `self.set` is an initialised sigset_t and `signal` a valid out-pointer.
        let rc = unsafe { libc::sigwait(&self.set, &mut signal) };
        if rc == 0 {
            Ok(signal)
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }
}
