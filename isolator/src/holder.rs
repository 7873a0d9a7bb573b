//! The process that holds a container's volumes when no Mesos agent does: `dvdcli exec`.
//!
//! A pid alone is not an identity (pids are reused), so a holder is the pid plus the process's
//! start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`). A holder is alive while
//! `/proc/<pid>` exists with that start time and is not a zombie.
//!
//! A `dvdcli exec` container's id is `dvdcli-exec-<pid>-<start time>` ([`Holder::exec_container_id`]),
//! so its holder can be read back from the id alone ([`Holder::of_exec_container_id`]) — and so
//! from the name of its checkpoint record even when the record itself is damaged: such a
//! container is provably gone when that process is. The prefix `dvdcli-exec-` is reserved for
//! these ids: an agent container may not use it (prepare refuses it).

use std::io;

/// A process identity that survives pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub start_time: u64,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    start_time: u64,
}

/// Parses the fields we need. The command name (field 2) is in parentheses and may contain
/// spaces and parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); field 22 is 19 further.
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

fn read_stat(pid: &str) -> io::Result<Option<Stat>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot parse /proc/{pid}/stat"),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process went away while we read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every `dvdcli exec` container id starts with this, and no other container's may.
pub const EXEC_ID_PREFIX: &str = "dvdcli-exec-";

impl Holder {
    /// The id of the `dvdcli exec` container this process holds: `dvdcli-exec-<pid>-<start>`.
    pub fn exec_container_id(&self) -> String {
        format!("{EXEC_ID_PREFIX}{}-{}", self.pid, self.start_time)
    }

    /// The holder a `dvdcli exec` container id names; `None` for any other id.
    pub fn of_exec_container_id(id: &str) -> Option<Self> {
        let (pid, start) = id.strip_prefix(EXEC_ID_PREFIX)?.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(pid) || !digits(start) {
            return None;
        }
        Some(Self {
            pid: pid.parse().ok()?,
            start_time: start.parse().ok()?,
        })
    }

    /// The calling process.
    pub fn current() -> io::Result<Self> {
        let stat = read_stat("self")?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "/proc/self/stat is missing"))?;
        Ok(Self {
            pid: std::process::id(),
            start_time: stat.start_time,
        })
    }

    /// Process `pid`, if it exists.
    pub fn of_pid(pid: u32) -> io::Result<Option<Self>> {
        Ok(read_stat(&pid.to_string())?.map(|s| Self {
            pid,
            start_time: s.start_time,
        }))
    }

    /// Whether this very process (not just its pid) still runs. An unreadable `/proc` counts
    /// as alive: a holder is only declared dead on evidence.
    pub fn is_alive(&self) -> bool {
        match read_stat(&self.pid.to_string()) {
            Ok(Some(stat)) => {
                stat.start_time == self.start_time && !matches!(stat.state, 'Z' | 'X')
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_hostile_command_name() {
        let line =
            "1234 (a) b (c) R 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'R',
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("1234 (x) R 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn the_current_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = Holder::current().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.is_alive());
        assert_eq!(Holder::of_pid(me.pid).unwrap(), Some(me));
        let reused = Holder {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
    }

    #[test]
    fn an_exec_container_id_names_its_holder() {
        let me = Holder::current().unwrap();
        let id = me.exec_container_id();
        assert_eq!(id, format!("dvdcli-exec-{}-{}", me.pid, me.start_time));
        assert_eq!(Holder::of_exec_container_id(&id), Some(me));
        for other in [
            "dvdcli-exec-",
            "dvdcli-exec-12",
            "dvdcli-exec-12-",
            "dvdcli-exec-12-3-4",
            "dvdcli-exec-+1-3",
            "dvdcli-exec-99999999999-3",
            "task-1",
            "0f8a2b7c-dvdcli-exec-1-2",
        ] {
            assert_eq!(Holder::of_exec_container_id(other), None, "{other}");
        }
    }

    #[test]
    fn an_exited_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let holder = Holder::of_pid(child.id()).unwrap();
        child.wait().unwrap();
        if let Some(holder) = holder {
            assert!(!holder.is_alive());
        }
        assert!(!Holder {
            pid: u32::MAX - 1,
            start_time: 0
        }
        .is_alive());
    }
}
