//! The grammar against random environments: it never panics, and what it accepts keeps
//! its invariants.

use super::*;

/// xorshift64*: a tiny deterministic PRNG, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn random_name(rng: &mut Rng) -> String {
    const PREFIXES: &[&str] = &["DVDI_VOLUME", "dvdi_volume_", "PATH", "", "DVDI_VOLUME_"];
    const KEYWORDS: &[&str] = &[
        "NAME",
        "NAME",
        "NAME",
        "DRIVER",
        "OPTS",
        "CONTAINERPATH",
        "EXPLICITCREATE",
        "READONLY",
        "DVDCLI",
        "NAM",
        "FOO",
        "",
        "name",
    ];
    const SLOTS: &[&str] = &["", "0", "1", "2", "3"];
    const SUFFIX: &[&str] = &["", "0", "1", "9", "7", "a", "_", " ", "\u{0661}", "é"];
    // Mostly well-formed names, so that many environments get as far as the slot rules.
    if rng.below(4) != 0 {
        let keyword = rng.pick(&KEYWORDS[..9]);
        return format!("DVDI_VOLUME_{keyword}{}", rng.pick(SLOTS));
    }
    let mut name = format!("{}{}", rng.pick(PREFIXES), rng.pick(KEYWORDS));
    for _ in 0..rng.below(4) {
        name.push_str(rng.pick(SUFFIX));
    }
    name
}

fn random_value(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "data",
        "/",
        "//",
        ".",
        "..",
        "=",
        ",",
        ":",
        " ",
        "\0",
        "\n",
        "-",
        "true",
        "TRUE",
        "false",
        "size=5",
        "o=addr=10.0.0.1",
        "rw",
        "local",
        "rexray",
        "é",
        "\u{7f}",
        "/tmp",
    ];
    const PLAIN: &[&str] = &[
        "a", "b", "data", "rexray", "local", "/a", "b/c", "true", "false", "size=5",
    ];
    if rng.below(2) == 0 {
        return rng.pick(PLAIN).to_owned();
    }
    let mut value = String::new();
    for _ in 0..rng.below(5) {
        value.push_str(rng.pick(PIECES));
    }
    value
}

#[test]
fn random_environments_never_panic_and_keep_the_invariants() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut refused, mut volumes) = (0, 0, 0);
    for _ in 0..20_000 {
        let env: Vec<(String, String)> = (0..rng.below(8))
            .map(|_| (random_name(&mut rng), random_value(&mut rng)))
            .collect();
        let result = parse(env.iter().map(|(n, v)| (n, v)), &GrammarConfig::default());
        let ours = has_dvdi_variables(env.iter().map(|(n, v)| (n, v)));
        match result {
            Ok(parsed) => {
                accepted += 1;
                volumes += parsed.volumes.len();
                if !ours {
                    assert_eq!(parsed, Parsed::default(), "{env:?}");
                }
                let v = &parsed.volumes;
                assert!(
                    v.windows(2)
                        .all(|w| w[0].origin.slot().unwrap() < w[1].origin.slot().unwrap()),
                    "{env:?}"
                );
                assert!(
                    v.iter().all(|r| r.origin.slot().unwrap() <= MAX_SLOT),
                    "{env:?}"
                );
                for (i, a) in v.iter().enumerate() {
                    for b in &v[i + 1..] {
                        assert!((&a.driver, &a.name) != (&b.driver, &b.name), "{env:?}");
                        if a.container_path.is_some() {
                            assert_ne!(a.container_path, b.container_path, "{env:?}");
                        }
                    }
                    if let Some(p) = &a.container_path {
                        // Normalisation is idempotent.
                        assert_eq!(&ContainerPath::new(p.as_str()).unwrap(), p);
                    }
                }
            }
            Err(e) => {
                refused += 1;
                assert!(ours, "{env:?}: {e}");
                assert!(e.to_string().contains("DVDI_VOLUME_"), "{e}");
            }
        }
    }
    // The generator reaches both outcomes often enough to mean something.
    eprintln!("accepted {accepted}, refused {refused}, volumes {volumes}");
    assert!(
        accepted > 2_000 && refused > 2_000 && volumes > 1_000,
        "{accepted} {refused} {volumes}"
    );
}
