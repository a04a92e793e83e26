//! The source tree has no module cycles: no two files reach each other through
//! the names they take (`use` lines and paths in code, re-exports followed to
//! the file that defines the name). A parent module and its own children are
//! one unit here: a child naming its parent, or a parent its child, is no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file of src/, by the crate it belongs to and its module path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Module {
    /// "lib" or "bin" (src/main.rs and src/cmd/).
    krate: &'static str,
    path: Vec<String>,
}

fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // test code (a file of tests, the tests at a file's end) is not the design's
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
            if p.extension().is_none_or(|e| e != "rs") || stem.is_some_and(|s| s.ends_with("tests"))
            {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut path: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if path
                .last()
                .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
            {
                path.pop();
            }
            let krate = match rel.iter().next().map(|c| c.to_string_lossy().into_owned()) {
                Some(c) if c == "main.rs" || c == "cmd" => "bin",
                _ => "lib",
            };
            out.insert(Module { krate, path }, p);
        }
    }
    out
}

/// The code of a file without comments, string and character literals, and
/// without its tests.
fn code(text: &str) -> String {
    // an inline `mod ... {` under a cfg that names test: the tests at the end
    let lines: Vec<&str> = text.lines().collect();
    let end = (1..lines.len()).find(|&i| {
        let (attr, item) = (lines[i - 1].trim(), lines[i].trim());
        attr.starts_with("#[cfg(")
            && attr.contains("test")
            && item.starts_with("mod ")
            && item.ends_with('{')
    });
    let text = match end {
        Some(i) => lines[..i - 1].join("\n"),
        None => text.to_string(),
    };
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i) = (String::new(), 0);
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, x)| c.get(i + k) == Some(&x));
    while i < c.len() {
        if at(i, "//") {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            while i < c.len() && !at(i, "*/") {
                i += 1;
            }
            i += 2;
        } else if c[i] == 'r'
            && (at(i + 1, "\"") || at(i + 1, "#"))
            && !c[i.saturating_sub(1)].is_alphanumeric()
        {
            // a raw string: r"..." or r#"..."#
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            i += 2 + hashes;
            while i < c.len() && !at(i, &close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && (c.get(i + 2) == Some(&'\'') || c.get(i + 1) == Some(&'\\')) {
            // a character literal ('x', '\n', '\''); a lifetime has no closing quote
            i += if c[i + 1] == '\\' { 2 } else { 1 };
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Every path a `use` tree names ("a::{b, c::d}" -> a::b, a::c::d), with the
/// name it is known by (after `as`).
fn expand(tree: &str, prefix: &str, out: &mut Vec<(String, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let base = tree[..open].trim().trim_end_matches("::");
        let Some(close) = tree.rfind('}').filter(|&c| c > open) else {
            return;
        };
        let inner = &tree[open + 1..close];
        let mut depth = 0;
        let mut start = 0;
        let joined = join(prefix, base);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &joined, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &joined, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, name) = match tree.split_once(" as ") {
        Some((p, n)) => (p.trim(), n.trim().to_string()),
        None => (tree, tree.rsplit("::").next().unwrap().to_string()),
    };
    let full = join(prefix, path);
    let name = if name == "self" {
        full.rsplit("::").next().unwrap().to_string()
    } else {
        name
    };
    let full = full.trim_end_matches("::self").to_string();
    out.push((full, name));
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// The `use` statements of some code: (is it `pub use`, its paths and names).
fn uses(code: &str) -> Vec<(bool, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let starts_word = before
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let end = rest[at..].find(';').map(|e| at + e);
        match (starts_word, end) {
            (true, Some(end)) => {
                let public = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
                let mut paths = Vec::new();
                expand(&rest[at + 4..end], "", &mut paths);
                out.push((public, paths));
                rest = &rest[end..];
            }
            _ => rest = &rest[at + 4..],
        }
    }
    out
}

struct Tree {
    modules: BTreeMap<Module, PathBuf>,
    codes: BTreeMap<Module, String>,
}

impl Tree {
    /// `path` as written in `from`, made absolute: (crate, segments).
    fn absolute(&self, from: &Module, path: &str) -> Option<(&'static str, Vec<String>)> {
        let segs: Vec<String> = path.split("::").map(|s| s.trim().to_string()).collect();
        let (krate, mut base, rest) = match segs[0].as_str() {
            "crate" => (from.krate, vec![], &segs[1..]),
            "charrnn" => ("lib", vec![], &segs[1..]),
            "$crate" => ("lib", vec![], &segs[1..]),
            "self" => (from.krate, from.path.clone(), &segs[1..]),
            "super" => {
                let mut base = from.path.clone();
                let mut i = 0;
                while segs.get(i).is_some_and(|s| s == "super") {
                    base.pop();
                    i += 1;
                }
                (from.krate, base, &segs[i..])
            }
            // a child module named directly (`use child::Item` in a mod.rs)
            first => {
                let mut child = from.path.clone();
                child.push(first.to_string());
                let m = Module {
                    krate: from.krate,
                    path: child,
                };
                if !self.modules.contains_key(&m) {
                    return None;
                }
                (from.krate, from.path.clone(), &segs[..])
            }
        };
        base.extend(rest.iter().cloned());
        Some((krate, base))
    }

    /// The file that defines what `segs` names: the deepest module on the path,
    /// then through its re-exports of the next name.
    fn resolve(&self, krate: &'static str, segs: &[String], depth: usize) -> Option<Module> {
        let mut m = Module {
            krate,
            path: vec![],
        };
        let mut used = 0;
        for (i, s) in segs.iter().enumerate() {
            let mut next = m.path.clone();
            next.push(s.clone());
            let cand = Module { krate, path: next };
            if self.modules.contains_key(&cand) {
                m = cand;
                used = i + 1;
            } else {
                break;
            }
        }
        if let (Some(name), true) = (segs.get(used), depth < 8) {
            let code = &self.codes[&m];
            for (public, paths) in uses(code) {
                if !public {
                    continue;
                }
                for (path, known) in paths {
                    if &known == name
                        && let Some((k, abs)) = self.absolute(&m, &path)
                        && let Some(target) = self.resolve(k, &abs, depth + 1)
                    {
                        return Some(target);
                    }
                }
            }
        }
        if krate == "bin" && m.path.is_empty() && segs.first().is_some_and(|s| s != "cmd") {
            return None;
        }
        Some(m)
    }

    /// Files each file takes names from.
    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut out = BTreeMap::new();
        for (m, code) in &self.codes {
            let mut paths: Vec<String> = uses(code)
                .into_iter()
                .flat_map(|(_, p)| p.into_iter().map(|(path, _)| path))
                .collect();
            // paths in the code itself: crate::a::b, super::x, charrnn::y::z
            let bytes = code.as_bytes();
            for root in ["crate::", "super::", "charrnn::", "self::"] {
                let mut from = 0;
                while let Some(at) = code[from..].find(root) {
                    let start = from + at;
                    from = start + root.len();
                    if start > 0
                        && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_')
                    {
                        continue;
                    }
                    let end = code[start..]
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .map_or(code.len(), |e| start + e);
                    paths.push(code[start..end].trim_end_matches(':').to_string());
                }
            }
            let mut to = BTreeSet::new();
            for path in paths {
                let Some((krate, abs)) = self.absolute(m, &path) else {
                    continue;
                };
                if let Some(t) = self.resolve(krate, &abs, 0) {
                    let related = t.krate == m.krate
                        && (t.path.starts_with(&m.path) || m.path.starts_with(&t.path));
                    if !related {
                        to.insert(t);
                    }
                }
            }
            out.insert(m.clone(), to);
        }
        out
    }
}

/// Strongly connected components of more than one file (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Module) {
        let i = w.index.len();
        w.index.insert(v, i);
        w.low.insert(v, i);
        w.stack.push(v);
        w.on.insert(v);
        for t in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(t) {
                visit(w, t);
                let l = w.low[t].min(w.low[v]);
                w.low.insert(v, l);
            } else if w.on.contains(t) {
                let l = w.index[t].min(w.low[v]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut scc = Vec::new();
            while let Some(x) = w.stack.pop() {
                w.on.remove(x);
                scc.push(x.clone());
                if x == v {
                    break;
                }
            }
            if scc.len() > 1 {
                w.out.push(scc);
            }
        }
    }
    let mut w = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.out
}

fn tree(src: &Path) -> Tree {
    let modules = modules(src);
    let codes = modules
        .iter()
        .map(|(m, p)| (m.clone(), code(&std::fs::read_to_string(p).unwrap())))
        .collect();
    Tree { modules, codes }
}

#[test]
fn the_source_tree_has_no_module_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let t = tree(&src);
    let edges = t.edges();
    let found = cycles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let names: Vec<String> = c
                .iter()
                .map(|m| t.modules[m].display().to_string())
                .collect();
            names.join(" <-> ")
        })
        .collect();
    assert!(found.is_empty(), "module cycles: {shown:#?}");
    // the reader sees the dependencies the code has (one known arrow each way)
    let file = |p: &str| {
        t.modules
            .iter()
            .find(|(_, f)| f.ends_with(p))
            .map(|(m, _)| m.clone())
            .unwrap()
    };
    assert!(edges[&file("train/trainer.rs")].contains(&file("backend/cpu.rs")));
    assert!(edges[&file("backend/cpu.rs")].contains(&file("train/state.rs")));
    assert!(edges[&file("cmd/train.rs")].contains(&file("train/setup.rs")));
}

#[test]
fn a_cycle_is_found() {
    // two sibling files that take a name from each other, in a tree of their own
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod x;\nmod y;\npub use x::X;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::y::Y; pub struct X;\n").unwrap();
    std::fs::write(src.join("a/y.rs"), "pub struct Y(crate::a::X);\n").unwrap();
    let t = tree(src);
    let found = cycles(&t.edges());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 2);
}
