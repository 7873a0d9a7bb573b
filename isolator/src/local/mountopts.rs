//! Docker-local style `o=` mount options: the flags `mount(8)` knows become `MsFlags`, the rest
//! is handed to the filesystem as mount data (`size=64m` for tmpfs, `addr=…` for nfs).

use crate::sys::MsFlags;

/// What to pass to `mount(2)` for an `o=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Filesystem-specific options, comma-separated; `None` when there are none.
    pub data: Option<String>,
}

impl MountOptions {
    /// Splits `o` on `,`: known flag words set or clear `MsFlags`, everything else stays data,
    /// in order. Empty items are dropped.
    pub fn parse(o: &str) -> MountOptions {
        let mut flags = MsFlags::empty();
        let mut data: Vec<&str> = Vec::new();
        for item in o.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match flag_word(item) {
                Some((set, clear)) => {
                    flags.remove(clear);
                    flags.insert(set);
                }
                None => data.push(item),
            }
        }
        MountOptions {
            flags,
            data: (!data.is_empty()).then(|| data.join(",")),
        }
    }

    /// Whether this is a bind mount (`bind` or `rbind`), whose source must be a host path.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// The flags a `mount(8)` option word sets and clears; `None` for filesystem data.
fn flag_word(word: &str) -> Option<(MsFlags, MsFlags)> {
    let none = MsFlags::empty();
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    Some(match word {
        "defaults" => (none, none),
        "ro" => (MsFlags::MS_RDONLY, none),
        "rw" => (none, MsFlags::MS_RDONLY),
        "nosuid" => (MsFlags::MS_NOSUID, none),
        "suid" => (none, MsFlags::MS_NOSUID),
        "nodev" => (MsFlags::MS_NODEV, none),
        "dev" => (none, MsFlags::MS_NODEV),
        "noexec" => (MsFlags::MS_NOEXEC, none),
        "exec" => (none, MsFlags::MS_NOEXEC),
        "sync" => (MsFlags::MS_SYNCHRONOUS, none),
        "async" => (none, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (MsFlags::MS_DIRSYNC, none),
        "noatime" => (MsFlags::MS_NOATIME, atime),
        "relatime" => (MsFlags::MS_RELATIME, atime),
        "strictatime" => (MsFlags::MS_STRICTATIME, atime),
        "atime" => (none, MsFlags::MS_NOATIME),
        "nodiratime" => (MsFlags::MS_NODIRATIME, none),
        "diratime" => (none, MsFlags::MS_NODIRATIME),
        "bind" => (MsFlags::MS_BIND, MsFlags::MS_REC),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, none),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_words_are_flags_and_the_rest_is_data() {
        let o = MountOptions::parse("size=64m");
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.data.as_deref(), Some("size=64m"));

        let o = MountOptions::parse("ro,nosuid,size=64m,nodev,mode=1777,noexec,noatime,sync");
        assert_eq!(
            o.flags,
            MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_SYNCHRONOUS
        );
        assert_eq!(o.data.as_deref(), Some("size=64m,mode=1777"));
    }

    #[test]
    fn later_words_override_earlier_ones() {
        assert_eq!(MountOptions::parse("ro,rw").flags, MsFlags::empty());
        assert_eq!(MountOptions::parse("rw,ro").flags, MsFlags::MS_RDONLY);
        assert_eq!(
            MountOptions::parse("noatime,relatime").flags,
            MsFlags::MS_RELATIME
        );
    }

    #[test]
    fn bind_and_rbind() {
        let b = MountOptions::parse("bind");
        assert!(b.is_bind());
        assert_eq!(b.flags, MsFlags::MS_BIND);
        assert_eq!(b.data, None);
        assert_eq!(
            MountOptions::parse("rbind,ro").flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert!(!MountOptions::parse("size=1m").is_bind());
    }

    #[test]
    fn empty_items_and_empty_value() {
        assert_eq!(
            MountOptions::parse(""),
            MountOptions {
                flags: MsFlags::empty(),
                data: None
            }
        );
        assert_eq!(
            MountOptions::parse(",addr=10.0.0.1, ,nfsvers=4,")
                .data
                .as_deref(),
            Some("addr=10.0.0.1,nfsvers=4")
        );
    }
}
