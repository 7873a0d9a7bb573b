//! The binary's modules keep the shape issue 11 gave them: no import cycle (each subcommand
//! module depends on `cli`, `request`, `output` and the library, never on a sibling), and no
//! `unsafe` — the host calls it needs are the library's safe functions (`dvdi::sys`).

use std::path::Path;

use dvdi_testkit::imports::{describe, find_cycle, module_graph};

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn dvdcli_modules_import_each_other_without_a_cycle() {
    let graph = module_graph(&src());
    // The checker sees the edges it is about (so it cannot pass by seeing nothing).
    for (from, to) in [("exec", "isolator_env"), ("volume", "output")] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains_key(to)),
            "expected an edge {from} -> {to}: {graph:?}"
        );
    }
    let subcommands = ["exec", "inspect", "recover", "volume", "version"];
    for a in subcommands {
        for b in subcommands {
            assert!(
                !graph.get(a).is_some_and(|e| e.contains_key(b)),
                "subcommand module {a} imports {b}"
            );
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle:\n  {}", describe(&graph, &cycle));
    }
}

#[test]
fn dvdcli_has_no_unsafe_code() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let words = code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            if words.into_iter().any(|w| w == "unsafe") {
                found.push(format!("{}:{}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside the library's sys.rs: {found:?}"
    );
}
