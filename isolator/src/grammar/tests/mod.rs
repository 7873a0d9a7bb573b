//! Every rule of the grammar, one test (or table) each, a file per part of the grammar; the
//! helpers they share.

use super::*;

fn run(pairs: &[(&str, &str)]) -> Result<Parsed, GrammarError> {
    parse(pairs.iter().copied(), &GrammarConfig::default())
}

fn ok(pairs: &[(&str, &str)]) -> Parsed {
    run(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn err(pairs: &[(&str, &str)]) -> GrammarError {
    match run(pairs) {
        Ok(parsed) => panic!("{pairs:?} was accepted: {parsed:?}"),
        Err(e) => e,
    }
}

/// The error's message names every one of `needles` (variables, values).
fn assert_names(e: &GrammarError, needles: &[&str]) {
    let text = e.to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

fn opts(pairs: &[(&str, &str)]) -> VolumeOpts {
    let mut o = VolumeOpts::new();
    for (k, v) in pairs {
        o.insert(*k, *v);
    }
    o
}

fn path(p: &str) -> Option<ContainerPath> {
    Some(ContainerPath::new(p).unwrap())
}

fn one_warning_containing(parsed: &Parsed, needles: &[&str]) {
    let hits: Vec<&String> = parsed
        .warnings
        .iter()
        .filter(|w| needles.iter().all(|n| w.contains(n)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "want one warning with {needles:?}, got {:?}",
        parsed.warnings
    );
}

mod merging;
mod nameless_slots;
mod no_variables;
mod one_volume;
mod real_shapes;
mod robustness;
mod slots;
mod values;
mod variable_names;
