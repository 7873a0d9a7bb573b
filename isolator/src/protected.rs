//! The host directories that an absolute container path of a container *without an image* may
//! not cover (SPEC §9): module parameter `protected_host_dirs`, `DVDI_PROTECTED_HOST_DIRS` for
//! `dvdcli exec`.
//!
//! Without an image, `DVDI_VOLUME_CONTAINERPATH=/etc` binds the volume over the host's own
//! `/etc` in the task's mount namespace. The task may have filled that volume earlier, so an
//! unprivileged task user could then run the host's setuid binaries (`su`, `sudo`, `passwd`)
//! against a `passwd`, `shadow` or `sudoers` of its own choosing — a route to root. The same
//! holds for the libraries, binaries and loaders under `/usr`, `/lib*`, `/bin`, `/sbin`, for
//! `/run` (sudo's timestamps, setuid wrappers) and for `/var` (`/var/lib` holds user databases
//! such as `extrausers` and `sss`, `/var/run` is `/run`).
//!
//! "Cover" means: the container path is one of the directories or lies below one. A container
//! with an image is not concerned: its absolute paths live inside its own rootfs. Relative
//! paths (under the sandbox) never are either, wherever the sandbox is (often under
//! `/var/lib/mesos`).

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The default: the host's system directories. `/` itself is not listed (the grammar refuses a
/// container path of `/` for every container); an operator who lists it refuses every
/// absolute path of image-less containers.
pub const DEFAULT_PROTECTED_HOST_DIRS: [&str; 15] = [
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/usr", "/var",
];

/// The word that stands for [`DEFAULT_PROTECTED_HOST_DIRS`] in a list (`default:/srv/secrets`).
pub const DEFAULT_WORD: &str = "default";
/// The value that protects nothing.
pub const NONE_WORD: &str = "none";

/// A set of protected host directories, absolute and normalised, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedDirs(Vec<PathBuf>);

impl Default for ProtectedDirs {
    fn default() -> Self {
        Self(
            DEFAULT_PROTECTED_HOST_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
        )
    }
}

impl ProtectedDirs {
    /// Protects nothing.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses a parameter value: `none`, or a `:`-separated list of absolute directories in
    /// which the word `default` stands for the default list (`default:/srv/secrets` widens
    /// it, `/etc:/usr` replaces it). An empty value is refused rather than read as "nothing
    /// protected": an unset shell variable in a manifest template must not turn the rule off.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!(
                "empty; write {NONE_WORD} to protect no directory, or {DEFAULT_WORD} for the default list"
            ));
        }
        if value == NONE_WORD {
            return Ok(Self::none());
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut add = |dir: PathBuf| {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        };
        for item in value.split(':').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                DEFAULT_WORD => DEFAULT_PROTECTED_HOST_DIRS
                    .iter()
                    .for_each(|d| add(PathBuf::from(d))),
                NONE_WORD => {
                    return Err(format!(
                        "{NONE_WORD} cannot be combined with directories; give it alone"
                    ))
                }
                dir => add(normalise(dir)?),
            }
        }
        if dirs.is_empty() {
            return Err("no directory given".to_owned());
        }
        Ok(Self(dirs))
    }

    /// The protected directory `path` (absolute, normalised: a container path) is or lies
    /// below, if any.
    pub fn covering(&self, path: &Path) -> Option<&Path> {
        self.0
            .iter()
            .find(|dir| path.starts_with(dir))
            .map(PathBuf::as_path)
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.0
    }
}

impl fmt::Display for ProtectedDirs {
    /// The value that parses back to this set (`none` when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(NONE_WORD);
        }
        let list: Vec<String> = self.0.iter().map(|d| d.display().to_string()).collect();
        f.write_str(&list.join(":"))
    }
}

/// An absolute directory with `.` and repeated or trailing `/` removed; `..` refused.
fn normalise(dir: &str) -> Result<PathBuf, String> {
    if !dir.starts_with('/') {
        return Err(format!("{dir:?} is not an absolute directory"));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(dir).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("{dir:?} has a '..' component"))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Vec<String> {
        ProtectedDirs::parse(v)
            .unwrap_or_else(|e| panic!("{v:?}: {e}"))
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    }

    #[test]
    fn the_default_list_covers_each_dir_and_what_is_below_it_only() {
        let p = ProtectedDirs::default();
        for dir in DEFAULT_PROTECTED_HOST_DIRS {
            for path in [dir.to_owned(), format!("{dir}/x"), format!("{dir}/x/y")] {
                assert_eq!(p.covering(Path::new(&path)), Some(Path::new(dir)), "{path}");
            }
            // A sibling that merely starts with the same letters is not covered.
            let sibling = format!("{dir}x");
            assert_eq!(p.covering(Path::new(&sibling)), None, "{sibling}");
        }
        for free in [
            "/tmp/config",
            "/data",
            "/tmp",
            "/srv/es",
            "/opt/x",
            "/home/es",
            "/mnt",
        ] {
            assert_eq!(p.covering(Path::new(free)), None, "{free}");
        }
    }

    #[test]
    fn a_list_replaces_the_default_and_default_widens_it() {
        assert_eq!(parse("/etc:/srv/secrets/"), ["/etc", "/srv/secrets"]);
        assert_eq!(parse(" /etc : //usr/./local "), ["/etc", "/usr/local"]);
        let widened = parse("default:/srv/secrets");
        assert_eq!(widened.len(), DEFAULT_PROTECTED_HOST_DIRS.len() + 1);
        assert!(widened.contains(&"/srv/secrets".to_owned()));
        assert_eq!(parse("default:/etc"), parse("default"), "no duplicates");
        assert_eq!(parse("/"), ["/"]);
        let everything = ProtectedDirs::parse("/").unwrap();
        assert!(everything.covering(Path::new("/data")).is_some());
        assert!(parse("none").is_empty());
        assert_eq!(ProtectedDirs::none().covering(Path::new("/etc")), None);
    }

    #[test]
    fn bad_values_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("  ", "empty"),
            (":", "no directory"),
            ("etc", "not an absolute"),
            ("/etc:usr", "not an absolute"),
            ("/etc/../tmp", "'..'"),
            ("none:/etc", "alone"),
            ("DEFAULT", "not an absolute"),
        ] {
            let err = ProtectedDirs::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn display_parses_back() {
        for v in ["none", "default", "/etc:/srv/x", "default:/srv"] {
            let p = ProtectedDirs::parse(v).unwrap();
            assert_eq!(ProtectedDirs::parse(&p.to_string()).unwrap(), p, "{v}");
        }
    }
}
