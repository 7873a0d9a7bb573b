//! How the library writes values for people: text that came from outside (a plugin's error
//! text, reply bodies, volume names from `List`) with its control characters escaped, and
//! durations as people read them. Every error and log line goes through these, so no front end
//! can print a plugin's escape sequence raw or a nanosecond-precise duration.

use std::fmt::{self, Write};
use std::time::Duration;

/// `text` for a log line or an error message: every control character (line breaks, escape
/// sequences, …) and every other character Rust's `escape_debug` would not print as itself
/// (unassigned, format and separator characters such as U+202E or U+2028) is written as an
/// escape (`\n`, `\u{1b}`); the rest, quotes and backslashes included, is left as it is, so
/// ordinary text reads unchanged. The result is always one line.
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// Whether [`escape`] leaves `text` as it is.
pub fn is_printable(text: &str) -> bool {
    escape(text).to_string() == text
}

/// See [`escape`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `str::escape_debug` knows which characters print (core's own tables), but it also
        // escapes quotes and backslashes: run it on the pieces between them.
        for piece in self.0.split_inclusive(['\\', '"', '\'']) {
            let (body, kept) = match piece.char_indices().last() {
                Some((i, c @ ('\\' | '"' | '\''))) => (&piece[..i], Some(c)),
                _ => (piece, None),
            };
            write!(f, "{}", body.escape_debug())?;
            if let Some(c) = kept {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// `d` as people read it: whole milliseconds below a second (`250 ms`), seconds with at most
/// three significant digits from a second on (`1 s`, `1.5 s`, `12.3 s`, `120 s`, `1230 s`).
pub fn duration(d: Duration) -> HumanDuration {
    HumanDuration(d)
}

/// See [`duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let ms = (nanos + 500_000) / 1_000_000;
        if ms < 1000 {
            return write!(f, "{ms} ms");
        }
        let secs = self.0.as_secs_f64();
        let text = if secs < 1000.0 {
            let decimals = if secs < 10.0 {
                2
            } else if secs < 100.0 {
                1
            } else {
                0
            };
            let t = format!("{secs:.decimals$}");
            if t.contains('.') {
                t.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                t
            }
        } else {
            // Round to three significant digits: 1234 s → 1230 s.
            let whole = (nanos + 500_000_000) / 1_000_000_000;
            let mut scale = 1u128;
            while whole / scale >= 1000 {
                scale *= 10;
            }
            let rounded = (whole + scale / 2) / scale * scale;
            rounded.to_string()
        };
        write!(f, "{text} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_ordinary_text_and_escapes_the_rest() {
        for same in [
            "no such volume",
            r#"volume "data" is busy"#,
            r"C:\path it's",
            "é ü 日本",
            "",
        ] {
            assert_eq!(escape(same).to_string(), same);
            assert!(is_printable(same));
        }
        for (raw, escaped) in [
            ("a\nb", r"a\nb"),
            ("\u{1b}[31mred\u{1b}[0m", r"\u{1b}[31mred\u{1b}[0m"),
            ("x\r\ty\0", r"x\r\ty\0"),
            ("abc\u{202e}cba", r"abc\u{202e}cba"),
            ("line\u{2028}sep", r"line\u{2028}sep"),
            ("\"\n\"", "\"\\n\""),
            ("\u{7f}\u{85}", r"\u{7f}\u{85}"),
        ] {
            assert_eq!(escape(raw).to_string(), escaped, "{raw:?}");
            assert!(!is_printable(raw));
            assert!(!escape(raw).to_string().contains(['\n', '\r']));
        }
    }

    #[test]
    fn durations_read_as_people_read_them() {
        let ms = Duration::from_millis;
        for (d, want) in [
            (Duration::ZERO, "0 ms"),
            (Duration::from_micros(400), "0 ms"),
            (Duration::from_micros(600), "1 ms"),
            (ms(250), "250 ms"),
            (Duration::from_micros(999_400), "999 ms"),
            (Duration::from_micros(999_600), "1 s"),
            (Duration::from_nanos(1_000_107_662), "1 s"),
            (ms(1500), "1.5 s"),
            (ms(1234), "1.23 s"),
            (ms(9999), "10 s"),
            (ms(12_345), "12.3 s"),
            (ms(60_000), "60 s"),
            (ms(120_000), "120 s"),
            (ms(999_700), "1000 s"),
            (ms(1_234_000), "1230 s"),
            (Duration::from_secs(u64::MAX), "18400000000000000000 s"),
        ] {
            assert_eq!(duration(d).to_string(), want, "{d:?}");
        }
    }
}
