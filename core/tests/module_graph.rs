//! The library's modules form no cycle, and no module file grows past what one reads in a
//! sitting. A newcomer should find a change's place from the file tree, and a cycle (A
//! uses B uses A) is where that stops working: neither can be understood, or moved, alone.
//!
//! The graph is read from the source: every `crate::NAME` path outside comments and test
//! modules (`use crate::{a, b::c}` groups included) is an edge to the top-level module
//! `NAME`; a directory module (`node/`, `scheduler/`) is one module with its children.
//! Print it, with the lines of code of each file, with
//!
//! ```text
//! cargo test -p aws-role-core --test module_graph -- --nocapture
//! ```
//!
//! and for another tree (an older commit's `core/src`) with `MODULE_GRAPH_SRC=DIR`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most lines of code (not tests, comments or blank lines) one module file may have.
const MAX_CODE_LINES: usize = 1000;

struct Source {
    /// `src/`-relative path.
    file: String,
    /// The top-level module the file belongs to.
    module: String,
    /// The file without its test module and without comment lines.
    code: Vec<String>,
}

fn sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    collect(src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src).ok()?.to_string_lossy().into_owned();
            let first = rel.split('/').next()?.trim_end_matches(".rs").to_string();
            if first == "lib" {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            Some(Source {
                module: first,
                code: code_lines(&text),
                file: rel,
            })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !is_test_file(&p) {
            out.push(p);
        }
    }
}

/// A sibling file that holds only a module's tests (`#[cfg(test)] #[path] mod tests`).
fn is_test_file(p: &Path) -> bool {
    p.file_stem()
        .is_some_and(|s| s == "tests" || s.to_string_lossy().ends_with("_tests"))
}

/// The lines before the file's test module, without blank and comment lines.
fn code_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let n = next.trim();
                n.starts_with("mod tests") || n.starts_with("pub(crate) mod tests")
            })
        {
            break;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        out.push(line.to_string());
    }
    out
}

/// The top-level modules a piece of code names with `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        // `aws_role_crate::x` or `some_crate::x` is not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (j, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if let Some(name) = ident(inner[start..j].trim()) {
                            found.insert(name);
                        }
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else if let Some(name) = ident(rest) {
            found.insert(name);
        }
    }
    found
}

/// The identifier at the start of `s`, if it names a module (lower case).
fn ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name.starts_with(|c: char| c.is_ascii_lowercase())).then_some(name)
}

type Graph = BTreeMap<String, BTreeSet<String>>;

fn graph(sources: &[Source]) -> Graph {
    let mut g = Graph::new();
    for s in sources {
        let deps = g.entry(s.module.clone()).or_default();
        for m in uses(&s.code.join("\n")) {
            if m != s.module {
                deps.insert(m);
            }
        }
    }
    g
}

/// A cycle of `g`, as the modules along it, if there is one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    // 0: unseen, 1: on the current path, 2: done.
    fn visit(
        g: &Graph,
        m: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == d).unwrap_or(0);
                    let mut c = path[from..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(g, d, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(g, m, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn src_dir() -> PathBuf {
    std::env::var_os("MODULE_GRAPH_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn the_modules_form_no_cycle_and_no_file_is_too_long() {
    let src = src_dir();
    let sources = sources(&src);
    assert!(sources.len() > 10, "no sources under {}", src.display());
    let g = graph(&sources);
    println!(
        "module graph of {} (module -> modules it uses):",
        src.display()
    );
    for (m, deps) in &g {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("  {m:<10} -> {}", deps.join(" "));
    }
    println!("lines of code per file (without tests, comments, blank lines):");
    let mut long = Vec::new();
    for s in &sources {
        println!("  {:>5}  {}", s.code.len(), s.file);
        if s.code.len() > MAX_CODE_LINES {
            long.push(format!("{} ({} lines)", s.file, s.code.len()));
        }
    }
    let cyc = cycle(&g);
    if let Some(c) = &cyc {
        println!("cycle: {}", c.join(" -> "));
    }
    assert!(cyc.is_none(), "the modules form a cycle: {cyc:?}");
    assert!(
        long.is_empty(),
        "files over {MAX_CODE_LINES} lines of code: {long:?}"
    );
}

/// The reader above finds what it must, so the check cannot pass by reading nothing.
#[test]
fn the_reader_finds_grouped_and_plain_paths_and_skips_comments_and_tests() {
    let code = code_lines(
        "use crate::{job::{Job, JobId}, map::RoleMap, text};\n\
         // crate::commented\n\
         fn f() { crate::store::Store::new(\"x\"); not_crate::other(); }\n\
         #[cfg(test)]\n\
         mod tests {\n    use crate::tested;\n}\n",
    );
    let found: Vec<String> = uses(&code.join("\n")).into_iter().collect();
    assert_eq!(found, ["job", "map", "store", "text"]);

    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
