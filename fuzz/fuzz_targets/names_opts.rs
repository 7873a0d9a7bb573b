//! Names and option lists: `DriverName::new`, `VolumeName::new`, `ContainerPath::new` and
//! `VolumeOpts::add_list`. Whatever they accept keeps the documented shape and reads back the
//! same.
#![no_main]

use dvdi::grammar::ContainerPath;
use dvdi::names::MAX_NAME_BYTES;
use dvdi::{DriverName, VolumeName, VolumeOpts};
use libfuzzer_sys::fuzz_target;

fn serde_round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).expect("reads back");
    assert_eq!(&back, value);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();

    match DriverName::new(s) {
        Ok(name) => {
            assert!(!s.is_empty() && s.len() <= MAX_NAME_BYTES);
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
            assert!(
                s.as_bytes()[0].is_ascii_alphanumeric(),
                "no '.', '..', '-x'"
            );
            serde_round_trip(&name);
        }
        Err(e) => assert!(e.to_string().contains("invalid driver name")),
    }

    match VolumeName::new(s) {
        Ok(name) => {
            assert!(!s.is_empty() && s.len() <= MAX_NAME_BYTES);
            assert!(!s.contains('/') && s != "." && s != ".." && !s.starts_with('-'));
            assert!(!s.chars().any(char::is_control));
            serde_round_trip(&name);
        }
        Err(e) => assert!(e.to_string().contains("invalid volume name")),
    }

    if let Ok(path) = ContainerPath::new(s) {
        assert_eq!(
            ContainerPath::new(path.as_str()).as_ref(),
            Ok(&path),
            "normal form"
        );
        assert!(path.as_str().split('/').all(|c| c != ".." && c != "."));
        serde_round_trip(&path);
    }

    // One list, then each line as its own list (repeated --volumeopts flags).
    let mut one = VolumeOpts::new();
    if one.add_list(s).is_ok() {
        check_opts(&one);
    }
    let lines: Vec<&str> = s.split('\n').collect();
    if let Ok(many) = VolumeOpts::parse_lists(&lines) {
        check_opts(&many);
    }
});

/// Keys are non-empty and trimmed, and the options written back as one `k=v,k=v` list read
/// back the same (a value may hold `=` and `,`).
fn check_opts(opts: &VolumeOpts) {
    let mut written = Vec::new();
    for (k, v) in opts.iter() {
        assert!(
            !k.is_empty() && k.trim() == k && !k.contains(['=', ',']),
            "{k:?}"
        );
        written.push(format!("{k}={v}"));
    }
    let list = written.join(",");
    let mut again = VolumeOpts::new();
    assert_eq!(again.add_list(&list), Ok(()), "{list:?}");
    assert_eq!(&again, opts, "{list:?}");
    serde_round_trip(opts);
}
