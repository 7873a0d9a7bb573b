//! The command lines Mesos runs on every task launch and exit — `dvdcli mount` and
//! `dvdcli unmount` with plain `--flag=value` or `--flag value` pairs — read without building
//! clap's command tree. clap builds every subcommand's arguments before it looks at the first
//! one; for a process that lives about a millisecond and runs twice per volume per task, that
//! was a third of its instructions and a dozen heap pages.
//!
//! [`parse`] gives exactly what clap would give, or `None` and clap decides: anything it is
//! not sure of (help, a repeated flag, a value that starts with `-` or is empty, a flag before
//! the subcommand, `--explicitcreate` with a value clap reads some other way, non-UTF-8) falls
//! back to clap, which also owns every error message. `tests::agrees_with_clap` sweeps every
//! argument list of up to four tokens over an alphabet of well-formed and tricky ones, and
//! checks that every `Some` here is clap's own answer.

use std::ffi::OsString;

use crate::cli::{Cli, Command, Leading, MountId, Opts, Volume};

/// `Some` only where clap would produce the same [`Cli`].
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let mut args = args.iter().skip(1).map(|a| a.to_str());
    let mount = match args.next()?? {
        "mount" => true,
        "unmount" => false,
        _ => return None,
    };
    let mut driver = None;
    let mut name = None;
    let mut id = None;
    let mut opts = Vec::new();
    let mut explicit_create = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let arg = arg?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg, None),
        };
        if mount && matches!(flag, "--explicitcreate" | "--explicitCreate") {
            let value = match inline {
                Some("true") => true,
                Some("false") => false,
                Some(_) => return None,
                // Alone it means true, unless a value follows (clap would take it).
                None => match args.peek() {
                    None => true,
                    Some(Some(next)) if next.starts_with("--") => true,
                    Some(_) => return None,
                },
            };
            set_once(&mut explicit_create, value)?;
            continue;
        }
        let slot = match flag {
            "--volumedriver" => &mut driver,
            "--volumename" => &mut name,
            "--id" => &mut id,
            "--volumeopts" if mount => {
                opts.push(value(inline, &mut args)?);
                continue;
            }
            _ => return None,
        };
        set_once(slot, value(inline, &mut args)?)?;
    }
    let volume = Volume {
        volumedriver: driver,
        volumename: name,
    };
    let id = MountId { id };
    let command = if mount {
        Command::Mount {
            volume,
            opts: Opts { volumeopts: opts },
            explicitcreate: explicit_create,
            id,
        }
    } else {
        Command::Unmount { volume, id }
    };
    Some(Cli {
        leading: Leading::default(),
        command,
    })
}

/// A flag's value: after `=`, or the next argument. `None` (clap decides) when it is empty or
/// starts with `-`, which clap may read as a flag.
fn value<'a>(
    inline: Option<&'a str>,
    rest: &mut impl Iterator<Item = Option<&'a str>>,
) -> Option<String> {
    let value = match inline {
        Some(v) => v,
        None => rest.next()??,
    };
    (!value.is_empty() && !value.starts_with('-')).then(|| value.to_owned())
}

/// clap refuses a flag given twice; that error is clap's to word.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Tokens Mesos and operators write, and the ones a short cut could get wrong.
    const ALPHABET: &[&str] = &[
        "mount",
        "unmount",
        "--volumedriver=d",
        "--volumedriver",
        "d",
        "--volumename=n",
        "--volumename",
        "--volumename=",
        "--volumename=-n",
        "-n",
        "--volumeopts=size=1",
        "--volumeopts",
        "a=b,c",
        "--explicitcreate",
        "--explicitCreate=false",
        "--explicitcreate=yes",
        "false",
        "--id=x",
        "--id",
        "--help",
        "-h",
        "--",
        "--bogus",
        "version",
    ];

    fn argv(tokens: &[&str]) -> Vec<OsString> {
        std::iter::once("dvdcli")
            .chain(tokens.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn check(tokens: &[&str], accepted: &mut usize) {
        let args = argv(tokens);
        if let Some(ours) = parse(&args) {
            *accepted += 1;
            match Cli::try_parse_from(&args) {
                Ok(clap) => assert_eq!(ours, clap, "{tokens:?}"),
                Err(e) => panic!("{tokens:?}: the short cut accepted what clap refuses: {e}"),
            }
        }
    }

    #[test]
    fn agrees_with_clap() {
        let mut accepted = 0;
        let mut tokens = Vec::new();
        for sub in ["mount", "unmount", "--volumedriver=d"] {
            tokens.clear();
            tokens.push(sub);
            check(&tokens, &mut accepted);
            for a in ALPHABET {
                tokens.push(a);
                check(&tokens, &mut accepted);
                for b in ALPHABET {
                    tokens.push(b);
                    check(&tokens, &mut accepted);
                    for c in ALPHABET {
                        tokens.push(c);
                        check(&tokens, &mut accepted);
                        for d in ALPHABET {
                            tokens.push(d);
                            check(&tokens, &mut accepted);
                            tokens.pop();
                        }
                        tokens.pop();
                    }
                    tokens.pop();
                }
                tokens.pop();
            }
        }
        // The sweep proves something only if the short cut took a real share of it.
        assert!(accepted > 1_000, "only {accepted} lists took the short cut");
    }

    #[test]
    fn takes_what_mesos_runs() {
        // Mesos' docker/volume isolator, the Mesos DVDI module and the benchmark.
        for line in [
            "mount --volumedriver=rexray --volumename=es1data --volumeopts=size=5",
            "mount --volumedriver=rexray --volumename=es1data --explicitcreate",
            "unmount --volumedriver=rexray --volumename=es1data",
            "mount --volumedriver=bench --volumename v1",
            "unmount --volumedriver bench --volumename v1 --id=c1",
        ] {
            let tokens: Vec<&str> = line.split(' ').collect();
            let args = argv(&tokens);
            let ours = parse(&args).unwrap_or_else(|| panic!("{line}: not taken"));
            assert_eq!(ours, Cli::try_parse_from(&args).unwrap(), "{line}");
        }
    }

    #[test]
    fn leaves_the_rest_to_clap() {
        for line in [
            "mount --help",
            "mount --volumename=a --volumename=b",
            "mount --volumename -n",
            "unmount --volumeopts=a=b",
            "unmount --explicitcreate",
            "--volumedriver=d mount",
            "mount --explicitcreate false",
            "path --volumedriver=d --volumename=n",
        ] {
            let tokens: Vec<&str> = line.split(' ').collect();
            assert!(parse(&argv(&tokens)).is_none(), "{line}");
        }
    }
}
