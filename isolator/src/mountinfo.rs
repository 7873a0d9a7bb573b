//! Reading `/proc/self/mountinfo`: which paths are mount points, and what is mounted there.

use std::io;
use std::path::{Path, PathBuf};

/// What a volume's mount point was on the host when the driver's Mount returned: the mount
/// it belongs to (the kernel's mount id, unique while that mount exists, and the mount
/// namespace that id is from) and whether it was that mount's root. Kept in the ledger so that
/// a prepare sharing the volume can check, with one `statx`, that the mount is still there
/// ([`MountIdentity::gone_since`]) instead of binding a bare directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountIdentity {
    /// The kernel's id of the mount the directory is on (`STATX_MNT_ID`); `None` where the
    /// kernel does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt_id: Option<u64>,
    /// The inode of the mount namespace `mnt_id` was read in (ids differ across namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt_ns: Option<u64>,
    /// Whether the directory was the root of its mount (a filesystem mounted right there).
    pub mount_root: bool,
    /// Whether it was a directory (a symlink or anything else is not).
    #[serde(skip)]
    pub is_dir: bool,
}

impl MountIdentity {
    /// Why the mount recorded as `self` is not what `now` shows at its mount point, if it is
    /// not: the mount point is missing or no directory, was a mount's root and is not any
    /// more, or is on another mount than it was (read in the same namespace). `None` when it is
    /// still there as far as one `statx` can tell.
    pub fn gone_since(&self, now: &io::Result<MountIdentity>) -> Option<String> {
        let now = match now {
            Ok(now) => now,
            Err(e) => return Some(format!("the mount point cannot be read: {e}")),
        };
        if !now.is_dir {
            return Some("the mount point is no directory".to_owned());
        }
        if self.mount_root && !now.mount_root {
            return Some("it is no longer a mount point".to_owned());
        }
        let same_ns = self.mnt_ns.is_some() && self.mnt_ns == now.mnt_ns;
        match (self.mnt_id, now.mnt_id) {
            (Some(then), Some(now)) if same_ns && then != now => Some(format!(
                "another mount is there now (mount id {now}, was {then})"
            )),
            _ => None,
        }
    }
}

/// One line of `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// Path of the mounted directory inside its filesystem (`/` for a whole filesystem).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub options: String,
    pub fstype: String,
    pub source: String,
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a `mountinfo` file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let post: Vec<&str> = post.split(' ').collect();
    if pre.len() < 6 || post.len() < 2 {
        return None;
    }
    Some(MountEntry {
        mount_id: pre[0].parse().ok()?,
        parent_id: pre[1].parse().ok()?,
        root: PathBuf::from(unescape(pre[3])),
        mount_point: PathBuf::from(unescape(pre[4])),
        options: pre[5].to_owned(),
        fstype: post[0].to_owned(),
        source: unescape(post[1]),
    })
}

/// The calling process's mount table.
pub fn read_self() -> io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Entries mounted at or below `dir`.
pub fn under<'a>(entries: &'a [MountEntry], dir: &'a Path) -> impl Iterator<Item = &'a MountEntry> {
    entries
        .iter()
        .filter(move |m| m.mount_point.starts_with(dir))
}

#[cfg(test)]
mod tests {
    /// Every way a recorded mount point can look later, for a recorded mount root and a
    /// recorded plain directory: the verdict "gone" or "still there".
    #[test]
    fn gone_since_sweeps_every_change_of_a_mount_point() {
        let id = |mnt_id, mnt_ns, mount_root, is_dir| MountIdentity {
            mnt_id,
            mnt_ns,
            mount_root,
            is_dir,
        };
        let root = id(Some(7), Some(1), true, true);
        let plain = id(Some(3), Some(1), false, true);
        let missing = || Err(io::Error::from_raw_os_error(libc::ENOENT));
        let cases: Vec<(&str, MountIdentity, io::Result<MountIdentity>, bool)> = vec![
            ("root unchanged", root, Ok(root), false),
            ("root missing", root, missing(), true),
            (
                "root now a file",
                root,
                Ok(id(Some(7), Some(1), true, false)),
                true,
            ),
            (
                "root unmounted",
                root,
                Ok(id(Some(3), Some(1), false, true)),
                true,
            ),
            (
                "root remounted",
                root,
                Ok(id(Some(9), Some(1), true, true)),
                true,
            ),
            (
                "root seen from another namespace",
                root,
                Ok(id(Some(9), Some(2), true, true)),
                false,
            ),
            (
                "root, no mount id now",
                root,
                Ok(id(None, Some(1), true, true)),
                false,
            ),
            ("plain unchanged", plain, Ok(plain), false),
            ("plain missing", plain, missing(), true),
            (
                "plain now a symlink",
                plain,
                Ok(id(Some(3), Some(1), false, false)),
                true,
            ),
            (
                "plain, its mount gone",
                plain,
                Ok(id(Some(1), Some(1), false, true)),
                true,
            ),
            (
                "plain now a mount root",
                plain,
                Ok(id(Some(8), Some(1), true, true)),
                true,
            ),
            (
                "plain seen from another namespace",
                plain,
                Ok(id(Some(1), Some(2), false, true)),
                false,
            ),
        ];
        for (what, then, now, gone) in cases {
            assert_eq!(
                then.gone_since(&now).is_some(),
                gone,
                "{what}: {:?}",
                then.gone_since(&now)
            );
        }
    }

    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    22 1 0:21 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw\n\
                    garbage line\n";
        let e = parse(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].mount_point, PathBuf::from("/mnt/my dir"));
        assert_eq!(e[0].root, PathBuf::from("/mnt1"));
        assert_eq!(e[0].fstype, "ext3");
        assert_eq!(e[0].source, "/dev/root");
        assert_eq!(e[1].mount_id, 22);
        assert_eq!(under(&e, Path::new("/tmp")).count(), 1);
    }

    #[test]
    fn reads_own_table() {
        let own = read_self().unwrap();
        assert!(own.iter().any(|m| m.mount_point == Path::new("/")));
    }
}
