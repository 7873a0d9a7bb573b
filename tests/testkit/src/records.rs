//! Checkpoint records damaged on purpose: every way a record can be found broken after its
//! holder died (a disk error, a hand edit).

use std::path::Path;

/// Every way [`damage`] breaks a record.
pub const DAMAGE: [&str; 5] = ["empty", "truncated", "garbage", "format", "symlink"];

/// Damages the JSON record at `path` one way (one of [`DAMAGE`]). `symlink` moves the record
/// to `elsewhere` and leaves a symlink to it in its place.
pub fn damage(path: &Path, how: &str, elsewhere: &Path) {
    let good = std::fs::read_to_string(path).unwrap();
    match how {
        "empty" => std::fs::write(path, "").unwrap(),
        "truncated" => std::fs::write(path, &good[..good.len() / 2]).unwrap(),
        "garbage" => std::fs::write(path, b"\x00\xff{{garbage").unwrap(),
        "format" => {
            assert!(good.contains("\"format\": 1"), "{good}");
            std::fs::write(path, good.replace("\"format\": 1", "\"format\": 2")).unwrap()
        }
        "symlink" => {
            std::fs::rename(path, elsewhere).unwrap();
            std::os::unix::fs::symlink(elsewhere, path).unwrap();
        }
        other => panic!("no damage {other}"),
    }
}
