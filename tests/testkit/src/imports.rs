//! Import cycles among a crate's top-level modules (issue 11: "one clear house before it
//! grows"). Every `crate::NAME` path in a file of `src/` — in a `use`, a `use crate::{…}`
//! group, or written inline — is an edge from the file's top-level module (`src/NAME.rs` or
//! `src/NAME/…`) to `NAME`. Comments are left out (a doc link is no dependency). `super::`
//! paths are not followed: inside a top-level module they stay inside it, and a top-level
//! file's `super::` is the crate root, which declares modules and depends on none of them.
//! Used by the library's and `dvdcli`'s `no_import_cycle` tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// module → (module it uses → one file that uses it).
pub type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; `None` for the crate root (`lib.rs`,
/// `main.rs`).
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_owned()),
        None => Some(first.to_owned()),
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules `text` names through `crate::`.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(is_ident) {
                continue; // `dvdi_crate::` or the like
            }
            let group = rest.trim_start();
            if let Some(inner) = group.strip_prefix('{') {
                // `crate::{a::B, c}`: the group may span lines; the rest of this line is
                // enough for one-line groups, and rustfmt puts each entry of a longer one on
                // a line that starts with its module (handled by `group_entries`).
                for entry in inner.split(',') {
                    let name: String = entry.trim().chars().take_while(|c| is_ident(*c)).collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
                continue;
            }
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out.extend(group_entries(text));
    out
}

/// Entries of multi-line `use crate::{` groups, one per line up to the closing `};`.
fn group_entries(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if inside {
            if code.starts_with('}') {
                inside = false;
                continue;
            }
            let name: String = code.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                out.insert(name);
            }
        } else if code.ends_with("crate::{") {
            inside = true;
        }
    }
    out
}

pub fn graph_of(files: &[(String, String)]) -> Graph {
    let mut graph = Graph::new();
    for (rel, text) in files {
        let Some(from) = top_module(Path::new(rel)) else {
            continue;
        };
        let edges = graph.entry(from.clone()).or_default();
        for to in crate_refs(text) {
            if to != from {
                edges.entry(to).or_insert_with(|| rel.clone());
            }
        }
    }
    graph
}

/// A cycle, as the modules on it (the first one repeated at the end), if there is one.
pub fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

pub fn describe(graph: &Graph, cycle: &[String]) -> String {
    cycle
        .windows(2)
        .map(|w| format!("{} -> {} (in {})", w[0], w[1], graph[&w[0]][&w[1]]))
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// The module graph of the crate whose sources are in `src`.
pub fn module_graph(src: &Path) -> Graph {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(src).unwrap().display().to_string();
            (rel, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    graph_of(&files)
}
