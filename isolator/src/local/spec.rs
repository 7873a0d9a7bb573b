//! What a local volume is, from its `Create` options: a plain directory, a block volume
//! (`size=`, `fstype=`: a formatted sparse image on a loop device), or a device volume
//! (Docker-local `type=`, `device=`, `o=`: mount a given device or tmpfs).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::LocalError;
use super::mountopts::MountOptions;
use crate::names::VolumeName;
use crate::opts::VolumeOpts;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Why `o=size=1m,mode=1777` fails: the option grammar (SPEC §3) starts a new key at every
/// `k=v` item, so only the first `k=v` and the words after it stay in `o`.
const O_HINT: &str = "; every k=v item after a comma starts a new option, so o= can hold one \
     k=v item followed by flag words (o=size=64m,ro,nosuid), not two k=v items";

/// Filesystems a block volume can be formatted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Ext4,
    Xfs,
    Btrfs,
}

impl FsType {
    pub fn parse(s: &str) -> Option<FsType> {
        match s {
            "ext4" => Some(FsType::Ext4),
            "xfs" => Some(FsType::Xfs),
            "btrfs" => Some(FsType::Btrfs),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
        }
    }

    /// The smallest image `mkfs` formats properly, checked against e2fsprogs 1.47, xfsprogs 6.1
    /// and btrfs-progs 6.2: below 2 MiB `mke2fs` silently leaves out the journal; `mkfs.xfs`
    /// (since 5.19) refuses less than 300 MiB; `mkfs.btrfs` refuses less than 114294784 bytes.
    pub fn min_size(self) -> u64 {
        match self {
            FsType::Ext4 => 2 * MIB,
            FsType::Xfs => 300 * MIB,
            FsType::Btrfs => 114_294_784,
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a local volume, as recorded in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VolumeKind {
    /// A directory under the root; nothing is mounted.
    Directory,
    /// A sparse image of `size` bytes formatted with `fstype`, loop-mounted while in use.
    Block { size: u64, fstype: FsType },
    /// `device` mounted as `fstype` with the `o=` options while in use.
    Device {
        fstype: String,
        device: String,
        /// The `o=` value.
        #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
        options: Option<String>,
    },
}

/// The options that make a device volume: they mount a host device or path (or a tmpfs) the
/// caller names, so a task may set them only where the operator allows it.
pub const DEVICE_OPTIONS: [&str; 3] = ["type", "device", "o"];

/// The [`DEVICE_OPTIONS`] that `opts` sets, in that order.
pub fn device_options(opts: &VolumeOpts) -> Vec<String> {
    DEVICE_OPTIONS
        .into_iter()
        .filter(|k| opts.get(k).is_some())
        .map(str::to_owned)
        .collect()
}

impl VolumeKind {
    /// The volume kind that `opts` ask for. Every key is checked; nothing is touched.
    pub fn from_opts(volume: &VolumeName, opts: &VolumeOpts) -> Result<VolumeKind, LocalError> {
        let invalid = |key: &str, value: &str, reason: String| LocalError::InvalidOption {
            volume: volume.to_string(),
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let conflict = |reason| LocalError::OptionConflict {
            volume: volume.to_string(),
            reason,
        };
        for (key, _) in opts.iter() {
            if !matches!(key, "size" | "fstype" | "type" | "device" | "o") {
                let hint = if opts.get("o").is_some() { O_HINT } else { "" };
                return Err(LocalError::UnknownOption {
                    volume: volume.to_string(),
                    key: key.to_owned(),
                    hint,
                });
            }
        }
        let block = opts.get("size").is_some() || opts.get("fstype").is_some();
        let device = !device_options(opts).is_empty();
        if block && device {
            return Err(conflict(
                "size/fstype (a block volume) cannot be combined with type/device/o (a device volume)",
            ));
        }
        if block {
            let Some(size_text) = opts.get("size") else {
                return Err(conflict(
                    "fstype needs size (fstype formats a block volume)",
                ));
            };
            let fstype = match opts.get("fstype") {
                None => FsType::Ext4,
                Some(f) => FsType::parse(f).ok_or_else(|| {
                    invalid("fstype", f, "supported: ext4, xfs, btrfs".to_owned())
                })?,
            };
            let size = parse_size(size_text).map_err(|r| invalid("size", size_text, r))?;
            if size < fstype.min_size() {
                return Err(invalid(
                    "size",
                    size_text,
                    format!(
                        "{fstype} needs at least {} bytes ({})",
                        fstype.min_size(),
                        human_size(fstype.min_size())
                    ),
                ));
            }
            return Ok(VolumeKind::Block { size, fstype });
        }
        if device {
            let (Some(fstype), Some(dev)) = (opts.get("type"), opts.get("device")) else {
                return Err(conflict(
                    "a device volume needs both type and device (e.g. type=tmpfs,device=tmpfs)",
                ));
            };
            if fstype.is_empty() {
                return Err(invalid("type", fstype, "it is empty".to_owned()));
            }
            if dev.is_empty() {
                return Err(invalid("device", dev, "it is empty".to_owned()));
            }
            let options = opts.get("o").filter(|o| !o.is_empty());
            if let Some(o) = options {
                if MountOptions::parse(o).is_bind() && !dev.starts_with('/') {
                    return Err(invalid(
                        "device",
                        dev,
                        "a bind mount needs an absolute host path".to_owned(),
                    ));
                }
            }
            return Ok(VolumeKind::Device {
                fstype: fstype.to_owned(),
                device: dev.to_owned(),
                options: options.map(str::to_owned),
            });
        }
        Ok(VolumeKind::Directory)
    }

    /// `"directory"`, `"block"` or `"device"`.
    pub fn name(&self) -> &'static str {
        match self {
            VolumeKind::Directory => "directory",
            VolumeKind::Block { .. } => "block",
            VolumeKind::Device { .. } => "device",
        }
    }

    /// Whether the volume is mounted while it has users (block and device volumes).
    pub fn is_mounted_kind(&self) -> bool {
        !matches!(self, VolumeKind::Directory)
    }
}

impl fmt::Display for VolumeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeKind::Directory => f.write_str("a directory (no options)"),
            VolumeKind::Block { size, fstype } => {
                write!(f, "a {fstype} block volume of {size} bytes")
            }
            VolumeKind::Device {
                fstype,
                device,
                options,
            } => {
                write!(f, "a device volume type={fstype:?} device={device:?}")?;
                match options {
                    Some(o) => write!(f, " o={o:?}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Bytes, or a whole number with a `K`, `M` or `G` suffix (powers of 1024, any case).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let unit = match unit {
        'B' => 1,
        'K' => KIB,
        'M' => MIB,
        'G' => GIB,
        _ => return Err("expected bytes or a K, M or G suffix (e.g. 64M)".to_owned()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "expected a whole number of bytes, or with a K, M or G suffix (e.g. 64M)".to_owned(),
        );
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| "the number is too large".to_owned())?;
    let bytes = n
        .checked_mul(unit)
        .ok_or_else(|| "the size is too large".to_owned())?;
    if bytes == 0 {
        return Err("the size must be greater than 0".to_owned());
    }
    Ok(bytes)
}

fn human_size(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol() -> VolumeName {
        VolumeName::new("vol1").unwrap()
    }

    fn kind(list: &str) -> Result<VolumeKind, LocalError> {
        VolumeKind::from_opts(&vol(), &VolumeOpts::parse_lists(&[list]).unwrap())
    }

    fn err(list: &str) -> String {
        let e = kind(list).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        let text = e.to_string();
        assert!(text.contains("\"vol1\""), "names the volume: {text}");
        text
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 * MIB));
        assert_eq!(parse_size("64m"), Ok(64 * MIB));
        assert_eq!(parse_size("3k"), Ok(3 * KIB));
        assert_eq!(parse_size("1G"), Ok(GIB));
        assert_eq!(parse_size("2g"), Ok(2 * GIB));
        for bad in [
            "", "0", "0M", "M", "-1", "1.5G", "64MB", "64T", " 64M", "1x",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184G").is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("").unwrap(), VolumeKind::Directory);
        assert_eq!(
            kind("size=64M").unwrap(),
            VolumeKind::Block {
                size: 64 * MIB,
                fstype: FsType::Ext4
            }
        );
        assert_eq!(
            kind("size=300m,fstype=xfs").unwrap(),
            VolumeKind::Block {
                size: 300 * MIB,
                fstype: FsType::Xfs
            }
        );
        assert_eq!(
            kind("type=tmpfs,device=tmpfs,o=size=64m").unwrap(),
            VolumeKind::Device {
                fstype: "tmpfs".into(),
                device: "tmpfs".into(),
                options: Some("size=64m".into())
            }
        );
        assert_eq!(
            kind("type=nfs,device=:/export,o=addr=10.0.0.1,rw").unwrap(),
            VolumeKind::Device {
                fstype: "nfs".into(),
                device: ":/export".into(),
                options: Some("addr=10.0.0.1,rw".into())
            }
        );
        assert_eq!(
            kind("type=none,device=/srv/x,o=bind").unwrap(),
            VolumeKind::Device {
                fstype: "none".into(),
                device: "/srv/x".into(),
                options: Some("bind".into())
            }
        );
    }

    #[test]
    fn refusals_name_the_volume_and_the_key() {
        assert!(err("color=blue").contains("\"color\""));
        assert!(err("size=64M,Size=1").contains("\"Size\""));
        let text = err("type=tmpfs,device=tmpfs,o=size=1m,mode=1777");
        assert!(
            text.contains("\"mode\"") && text.contains("starts a new option"),
            "{text}"
        );
        assert!(err("size=0").contains("size=\"0\""));
        assert!(err("size=lots").contains("size=\"lots\""));
        assert!(err("size=1M").contains("at least 2097152 bytes"));
        assert!(err("size=200M,fstype=xfs").contains("xfs needs at least"));
        assert!(err("size=64M,fstype=btrfs").contains("btrfs needs at least 114294784"));
        assert!(err("size=64M,fstype=zfs").contains("fstype=\"zfs\""));
        assert!(err("fstype=xfs").contains("fstype needs size"));
        assert!(err("size=64M,type=tmpfs,device=tmpfs").contains("cannot be combined"));
        assert!(err("fstype=ext4,o=ro").contains("cannot be combined"));
        assert!(err("type=tmpfs").contains("needs both type and device"));
        assert!(err("device=/dev/sdb").contains("needs both type and device"));
        assert!(err("o=size=1m").contains("needs both type and device"));
        assert!(err("type=,device=x").contains("type=\"\""));
        assert!(err("type=none,device=srv,o=bind").contains("absolute host path"));
    }

    #[test]
    fn kinds_round_trip_through_json() {
        for k in [
            kind("").unwrap(),
            kind("size=64M").unwrap(),
            kind("type=tmpfs,device=tmpfs").unwrap(),
            kind("type=tmpfs,device=tmpfs,o=size=1m").unwrap(),
        ] {
            let text = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<VolumeKind>(&text).unwrap(), k);
        }
        assert_eq!(
            serde_json::to_string(&kind("size=64M").unwrap()).unwrap(),
            r#"{"kind":"block","size":67108864,"fstype":"ext4"}"#
        );
    }
}
