//! The rules of docs/ARCHITECTURE.md, checked against the source rather than trusted: which
//! module may import which, and the one owner of threads, clocks, `unsafe`, memory maps, file
//! operations on a store, and clap. Test code is exempt (it may read clocks, spawn threads and
//! write files as it likes); everything compiled into the library and the binary is not.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A source file's path below `src/`, and its text with test code removed.
struct Source {
    rel: String,
    code: String,
}

/// Every `.rs` file below `src/`, without the files that are test modules and without the
/// `#[cfg(test)]` items of the others.
fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, fs::read_to_string(p).unwrap())
        })
        .collect();
    let test_only = test_module_files(&texts);
    texts
        .into_iter()
        .filter(|(rel, _)| !test_only.contains(rel))
        .map(|(rel, text)| Source {
            code: without_tests(&without_comments(&text)),
            rel,
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Files declared as `#[cfg(test)] mod NAME;` by another file.
fn test_module_files(texts: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (rel, text) in texts {
        // The directory a file's child modules live in.
        let dir = match rel.rsplit_once('/') {
            Some((d, "mod.rs")) => format!("{d}/"),
            Some((d, f)) => format!("{d}/{}/", f.trim_end_matches(".rs")),
            None if rel == "lib.rs" || rel == "main.rs" => String::new(),
            None => format!("{}/", rel.trim_end_matches(".rs")),
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            if w[0] == "#[cfg(test)]" {
                if let Some(name) = w[1]
                    .strip_prefix("mod ")
                    .or_else(|| w[1].strip_prefix("pub(crate) mod "))
                    .and_then(|r| r.strip_suffix(';'))
                {
                    out.insert(format!("{dir}{name}.rs"));
                    out.insert(format!("{dir}{name}/mod.rs"));
                    // Everything below a test module is test code too.
                    for (other, _) in texts {
                        if other.starts_with(&format!("{dir}{name}/")) {
                            out.insert(other.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

/// The text without `//` and `/* */` comments and without string literals' contents, so that
/// a rule is not broken by a word in a comment or a message.
fn without_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('{', '"', '\n'): skipped, so its brace or quote counts for nothing.
            let end = b[i + 1..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + 2 + p);
            out.push_str("' '");
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The code without `#[cfg(test)]` items (a `mod tests { ... }` block, a test-only function).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its first `;` before any brace, or at its matching closing brace.
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The library module a file belongs to (`store`, `cli`, `lib`).
fn module(rel: &str) -> &str {
    rel.split(['/', '.']).next().unwrap()
}

/// Whether `needle` occurs in `code` not as the tail of a longer name (`File::open` is not in
/// `SegmentFile::open`).
fn contains_word(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        !needle.starts_with(|c: char| c.is_alphanumeric())
            || !code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Files whose code contains `needle`, outside the `allowed` path prefixes.
fn offenders(sources: &[Source], needles: &[&str], allowed: &[&str]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| !allowed.iter().any(|a| s.rel.starts_with(a)))
        .filter_map(|s| {
            let hits: Vec<&str> = needles
                .iter()
                .copied()
                .filter(|n| contains_word(&s.code, n))
                .collect();
            (!hits.is_empty()).then(|| format!("{}: {}", s.rel, hits.join(", ")))
        })
        .collect()
}

#[test]
fn the_source_is_read() {
    let s = sources();
    assert!(s.len() > 40, "only {} files", s.len());
    assert!(s.iter().any(|f| f.rel == "pipeline/mod.rs"));
    // The rules below see code, not tests: a test module's contents are gone.
    let store = s.iter().find(|f| f.rel == "store/mod.rs").unwrap();
    assert!(!store.code.contains("#[test]"));
}

/// Rule 1: imports point down the table; a module uses only those below it.
#[test]
fn imports_point_down_the_table() {
    let may_use: &[(&str, &[&str])] = &[
        ("time", &[]),
        ("hint", &[]),
        ("fs", &[]),
        ("privs", &[]),
        ("proof", &["time", "fs"]),
        ("record", &["time"]),
        ("capture", &["time", "record", "fs", "hint"]),
        ("decode", &["capture", "record", "time", "hint"]),
        ("flow", &["decode", "record", "time", "hint"]),
        ("store", &["record", "time", "fs", "proof"]),
        ("retention", &["store", "record", "time"]),
        ("anonymize", &["store", "record", "time", "fs"]),
        ("query", &["store", "record", "time", "fs"]),
        ("preserve", &["store", "query", "record", "time", "fs"]),
        ("export", &["store", "record", "time", "fs"]),
        ("tor", &["store", "query", "time", "fs"]),
        (
            "disclose",
            &["store", "query", "proof", "record", "time", "fs"],
        ),
        (
            "pipeline",
            &[
                "capture",
                "decode",
                "flow",
                "store",
                "retention",
                "export",
                "proof",
                "record",
                "time",
                "fs",
                "hint",
            ],
        ),
        // The fuzz targets' entry points (feature `fuzzing`) reach every parser; nothing uses
        // them.
        (
            "fuzz_api",
            &[
                "capture", "decode", "disclose", "proof", "query", "record", "store", "tor",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for s in sources() {
        let m = module(&s.rel);
        if matches!(m, "lib" | "main" | "cli") {
            continue;
        }
        let Some((_, allowed)) = may_use.iter().find(|(name, _)| *name == m) else {
            wrong.push(format!("{}: module {m} is not in the table", s.rel));
            continue;
        };
        for (i, _) in s.code.match_indices("crate::") {
            let used: String = s.code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if used != m && !allowed.contains(&used.as_str()) {
                wrong.push(format!("{}: {m} uses crate::{used}", s.rel));
            }
        }
        // `use super::super::..` out of the module would dodge the check above.
        if s.code.contains("super::super::super") {
            wrong.push(format!(
                "{}: reaches out through super::super::super",
                s.rel
            ));
        }
    }
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the table:\n{}",
        wrong.join("\n")
    );
}

/// Fails naming every file below `within` (path prefixes; empty: all of src/) whose code
/// holds one of `needles`, unless the file is below one of `allowed`.
fn only_in(needles: &[&str], allowed: &[&str], within: &[&str], what: &str) {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|s| within.is_empty() || within.iter().any(|w| s.rel.starts_with(w)))
        .collect();
    let wrong = offenders(&sources, needles, allowed);
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

/// Rule 2: the pipeline is the only module that starts threads.
#[test]
fn only_the_pipeline_starts_threads() {
    let spawning = [
        "thread::spawn",
        "thread::Builder",
        "thread::scope",
        ".spawn(",
    ];
    only_in(
        &spawning,
        &["pipeline/"],
        &[],
        "threads started outside pipeline",
    );
}

/// Rule 3: time is an argument. The library reads no clock; the binary's `cli` reads the wall
/// clock and hands it down (and times its own commands for the summaries it prints).
#[test]
fn only_the_cli_reads_a_clock() {
    let clocks = ["SystemTime::now", "Instant::now", "UNIX_EPOCH"];
    only_in(&clocks, &["cli/"], &[], "clocks read outside cli");
}

/// Rule 4: `unsafe` only in the file-system module (memory maps), the hints (prefetch,
/// huge-page advice) and the fanout module's two socket-option calls (no safe crate wraps
/// `PACKET_FANOUT`).
#[test]
fn unsafe_only_for_memory_maps_the_prefetch_hint_and_fanout() {
    only_in(
        &["unsafe "],
        &["fs.rs", "hint.rs", "capture/fanout.rs"],
        &[],
        "unsafe outside fs, hint and capture::fanout",
    );
    only_in(&["memmap2"], &["fs.rs"], &[], "memmap2 outside fs");
}

/// Rule 5: the store owns its files, through the one file-system module that a test can make
/// fail: no direct `std::fs` in store or retention.
#[test]
fn the_store_touches_files_only_through_fs() {
    let direct = ["std::fs", "File::open", "File::create", "OpenOptions"];
    let store = ["store/", "retention/", "anonymize/"];
    only_in(&direct, &[], &store, "file operations around crate::fs");
}

/// Rule 6: the command line is the binary's: no clap in the library.
#[test]
fn clap_only_in_the_binary() {
    only_in(&["clap"], &["cli/", "main.rs"], &[], "clap in the library");
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    assert!(!lib.contains("mod cli"), "cli is a library module again");
}
