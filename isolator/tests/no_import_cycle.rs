//! No import cycle among the library's top-level modules (the checker is
//! `dvdi_testkit::imports`), and `driver/` knows no implementation.

use std::path::Path;

use dvdi_testkit::imports::{describe, find_cycle, graph_of, module_graph};

#[test]
fn the_crates_modules_import_each_other_without_a_cycle() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The checker sees the edges it is about (so it cannot pass by seeing nothing).
    for (from, to) in [
        ("plugin", "driver"),
        ("local", "driver"),
        ("resolver", "plugin"),
        ("resolver", "local"),
        ("lifecycle", "driver"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains_key(to)),
            "expected an edge {from} -> {to}"
        );
    }
    for implementation in ["plugin", "local"] {
        assert!(
            !graph["driver"].contains_key(implementation),
            "driver/ must not know {implementation}"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle:\n  {}", describe(&graph, &cycle));
    }
}

#[test]
fn the_checker_finds_the_old_driver_plugin_cycle() {
    let files = [
        (
            "driver/mod.rs".to_owned(),
            "use crate::config::Settings;\nuse crate::plugin::{PluginClient, PluginError};\n"
                .to_owned(),
        ),
        (
            "plugin.rs".to_owned(),
            "use crate::{\n    driver::VolumeDriver,\n    http,\n};\n".to_owned(),
        ),
        (
            "config.rs".to_owned(),
            "// crate::plugin in a comment\n".to_owned(),
        ),
    ];
    let graph = graph_of(&files);
    let cycle = find_cycle(&graph).expect("driver -> plugin -> driver");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"driver".to_owned()) && cycle.contains(&"plugin".to_owned()));
    assert!(
        !graph["config"].contains_key("plugin"),
        "comments are no edges"
    );
    // An inline path counts too.
    let inline = [
        ("a.rs".to_owned(), "fn f() { crate::b::g() }".to_owned()),
        ("b/mod.rs".to_owned(), "use crate::a::f;".to_owned()),
    ];
    assert!(find_cycle(&graph_of(&inline)).is_some());
    let one_line_group = [
        ("a.rs".to_owned(), "use crate::{b::g, c};".to_owned()),
        ("c.rs".to_owned(), "use crate::a;".to_owned()),
    ];
    assert!(find_cycle(&graph_of(&one_line_group)).is_some());
}
