//! The embedded `local` driver's options (`dvdi::local::VolumeKind::from_opts`, which also
//! reads sizes such as `size=64M`): a task chooses them in `DVDI_VOLUME_OPTS`, and the kind they give is written
//! to the volume's metadata, so it must read back as itself.
#![no_main]

use dvdi::local::VolumeKind;
use dvdi::{VolumeName, VolumeOpts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let Ok(opts) = VolumeOpts::parse_lists(&lines) else {
        return;
    };
    let volume = VolumeName::new("fuzz").expect("a valid volume name");
    match VolumeKind::from_opts(&volume, &opts) {
        Ok(kind) => {
            match &kind {
                VolumeKind::Directory => assert!(opts.is_empty()),
                VolumeKind::Block { size, fstype } => assert!(*size >= fstype.min_size()),
                VolumeKind::Device { fstype, device, .. } => {
                    assert!(!fstype.is_empty() && !device.is_empty());
                }
            }
            let json = serde_json::to_string(&kind).expect("serializes");
            let back: VolumeKind = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, kind);
            let _ = kind.to_string();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
