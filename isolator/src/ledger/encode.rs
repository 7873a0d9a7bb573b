//! Reversible file names for ledger records: a volume name or container id becomes one path
//! component that is never `.`/`..`, never hidden, and fits in `NAME_MAX` with our suffixes.
//!
//! Plain form: bytes of `[A-Za-z0-9_.-]` are kept, every other byte is `%XX` (upper-case hex),
//! and a leading `.` is `%2E` (so no record file starts with `.`, the temp-file prefix). When
//! the plain form is longer than [`MAX_PLAIN`], the hash form is used instead:
//! `<first 32 plain characters>~<sha256 of the name, hex>`; `~` never occurs in the plain form,
//! so the two forms cannot be confused. A hash-form name cannot be decoded: the record holds
//! the full name and readers check that it encodes to the file's name.

use sha2::{Digest, Sha256};

/// Longest plain stem: `NAME_MAX` (255) less the longest suffix we add (`.json.corrupt`).
pub const MAX_PLAIN: usize = 255 - ".json.corrupt".len();
/// How much of the plain form a hash-form stem keeps, for the operator's eyes.
const HASH_PREFIX: usize = 32;

fn keep(b: u8, first: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && !first)
}

fn plain(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if keep(b, i == 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file-name stem for `name`.
pub fn encode(name: &str) -> String {
    let plain = plain(name);
    if plain.len() <= MAX_PLAIN {
        return plain;
    }
    let mut cut = HASH_PREFIX;
    // Do not cut a `%XX` in half (cosmetic only: the hash is what identifies the name).
    while let Some(pos) = plain[..cut].rfind('%') {
        if pos + 3 <= cut {
            break;
        }
        cut = pos;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}", &plain[..cut])
}

/// The name a plain-form stem stands for; `None` for a hash-form stem or a malformed one.
pub fn decode(stem: &str) -> Option<String> {
    if stem.contains('~') {
        return None;
    }
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = stem.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if keep(b, i == 0) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    let name = String::from_utf8(out).ok()?;
    // Only the canonical spelling decodes, so every name has exactly one file.
    (encode(&name) == stem).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_round_trip() {
        for name in [
            "data",
            "es-1.data",
            "My Volume",
            "a:b",
            "ünïcode",
            ".hidden",
            "..a",
            "50%",
            "a~b",
        ] {
            let stem = encode(name);
            assert!(!stem.starts_with('.'), "{stem}");
            assert!(!stem.contains('/'), "{stem}");
            assert_eq!(decode(&stem).as_deref(), Some(name), "{stem}");
        }
        assert_eq!(encode("My Volume"), "My%20Volume");
        assert_eq!(encode(".x"), "%2Ex");
    }

    #[test]
    fn long_names_use_a_hash_that_fits() {
        let long = "ü".repeat(127); // 254 bytes, 762 plain characters
        let stem = encode(&long);
        assert!(stem.contains('~'));
        assert!(stem.len() + ".json.corrupt".len() <= 255);
        assert_eq!(decode(&stem), None);
        assert_ne!(encode(&"ü".repeat(126)), stem);
        let at_limit = "a".repeat(MAX_PLAIN);
        assert_eq!(encode(&at_limit), at_limit);
        assert!(encode(&"a".repeat(MAX_PLAIN + 1)).contains('~'));
    }

    #[test]
    fn non_canonical_stems_do_not_decode() {
        for stem in ["%2e", "%41", "a%2", "a%zz", ".x", "a b", "a%2Fb/"] {
            assert_eq!(decode(stem), None, "{stem}");
        }
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
    }
}
