//! file-stats: walks the workspace on all cores and counts files and lines per language.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use vtcode_plugin_sdk::{export_plugin, Context, Metadata, Plugin, PluginResult, Value};

struct FileStats;

/// Bytes looked at to decide whether a file is binary.
const BINARY_SNIFF: usize = 8000;

fn language(path: &Path) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name {
        "Makefile" | "makefile" | "GNUmakefile" => return "Makefile",
        "Dockerfile" => return "Dockerfile",
        _ => {}
    }
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "Other",
    };
    match ext.as_str() {
        "rs" => "Rust",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "C++",
        "ts" | "tsx" | "mts" | "cts" => "TypeScript",
        "js" | "jsx" | "mjs" | "cjs" => "JavaScript",
        "py" => "Python",
        "go" => "Go",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "rb" => "Ruby",
        "php" => "PHP",
        "cs" => "C#",
        "swift" => "Swift",
        "sh" | "bash" | "zsh" => "Shell",
        "md" | "markdown" => "Markdown",
        "json" => "JSON",
        "yml" | "yaml" => "YAML",
        "toml" => "TOML",
        "html" | "htm" => "HTML",
        "css" | "scss" | "less" => "CSS",
        "sql" => "SQL",
        "xml" => "XML",
        "txt" => "Text",
        _ => "Other",
    }
}

/// Name patterns from the root .gitignore: plain names and `*` globs (no paths, no negation).
struct Ignore {
    names: Vec<String>,
}

fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

impl Ignore {
    fn load(root: &Path, include_ignored: bool) -> Ignore {
        let mut names = Vec::new();
        if !include_ignored {
            names.push(".git".to_string());
            names.push("node_modules".to_string());
            if let Ok(text) = fs::read_to_string(root.join(".gitignore")) {
                for line in text.lines() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                        continue;
                    }
                    let line = line.trim_start_matches('/').trim_end_matches('/');
                    if !line.is_empty() && !line.contains('/') {
                        names.push(line.to_string());
                    }
                }
            }
        }
        Ignore { names }
    }

    fn ignores(&self, name: &str) -> bool {
        self.names.iter().any(|p| if p.contains('*') || p.contains('?') { glob_match(p.as_bytes(), name.as_bytes()) } else { p == name })
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    files: u64,
    lines: u64,
    bytes: u64,
}

#[derive(Default)]
struct Totals {
    by_language: HashMap<&'static str, Tally>,
    largest: Vec<(u64, u64, PathBuf)>,
    files: u64,
    skipped: u64,
    errors: u64,
}

/// Directories waiting to be read, and how many are being read now.
struct Queue {
    dirs: Vec<PathBuf>,
    busy: usize,
    files_seen: u64,
}

fn count_file(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<(u64, u64, bool)> {
    buf.clear();
    fs::File::open(path)?.read_to_end(buf)?;
    let sniff = &buf[..buf.len().min(BINARY_SNIFF)];
    if sniff.contains(&0) {
        return Ok((buf.len() as u64, 0, true));
    }
    let mut lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
    if buf.last().is_some_and(|&b| b != b'\n') {
        lines += 1;
    }
    Ok((buf.len() as u64, lines, false))
}

fn keep_largest(list: &mut Vec<(u64, u64, PathBuf)>, top: usize, entry: (u64, u64, PathBuf)) {
    if top == 0 {
        return;
    }
    list.push(entry);
    if list.len() > top * 4 {
        list.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        list.truncate(top);
    }
}

fn walk(root: &Path, ignore: &Ignore, top: usize, max_files: u64) -> (Totals, bool) {
    let queue = Mutex::new(Queue { dirs: vec![root.to_path_buf()], busy: 0, files_seen: 0 });
    let ready = Condvar::new();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(16);
    let results: Vec<Totals> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut totals = Totals::default();
                    let mut buf = Vec::with_capacity(1 << 16);
                    loop {
                        let dir = {
                            let mut q = queue.lock().unwrap();
                            loop {
                                if let Some(dir) = q.dirs.pop() {
                                    q.busy += 1;
                                    break Some(dir);
                                }
                                if q.busy == 0 || q.files_seen >= max_files {
                                    break None;
                                }
                                q = ready.wait(q).unwrap();
                            }
                        };
                        let Some(dir) = dir else {
                            ready.notify_all();
                            return totals;
                        };
                        let mut subdirs = Vec::new();
                        let mut files = 0u64;
                        match fs::read_dir(&dir) {
                            Ok(entries) => {
                                for entry in entries.flatten() {
                                    let name = entry.file_name();
                                    let name = name.to_string_lossy();
                                    let Ok(kind) = entry.file_type() else { continue };
                                    if ignore.ignores(&name) {
                                        totals.skipped += 1;
                                        continue;
                                    }
                                    let path = entry.path();
                                    if kind.is_dir() {
                                        subdirs.push(path);
                                    } else if kind.is_file() {
                                        files += 1;
                                        match count_file(&path, &mut buf) {
                                            Ok((bytes, lines, binary)) => {
                                                let lang = if binary { "Binary" } else { language(&path) };
                                                let t = totals.by_language.entry(lang).or_default();
                                                t.files += 1;
                                                t.lines += lines;
                                                t.bytes += bytes;
                                                totals.files += 1;
                                                keep_largest(&mut totals.largest, top, (bytes, lines, path));
                                            }
                                            Err(_) => totals.errors += 1,
                                        }
                                    }
                                }
                            }
                            Err(_) => totals.errors += 1,
                        }
                        let mut q = queue.lock().unwrap();
                        q.busy -= 1;
                        q.files_seen += files;
                        q.dirs.extend(subdirs);
                        ready.notify_all();
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let truncated = queue.lock().unwrap().files_seen >= max_files;
    let mut all = Totals::default();
    for t in results {
        for (lang, tally) in t.by_language {
            let a = all.by_language.entry(lang).or_default();
            a.files += tally.files;
            a.lines += tally.lines;
            a.bytes += tally.bytes;
        }
        all.largest.extend(t.largest);
        all.files += t.files;
        all.skipped += t.skipped;
        all.errors += t.errors;
    }
    all.largest.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
    all.largest.truncate(top);
    (all, truncated)
}

impl Plugin for FileStats {
    fn metadata() -> Metadata {
        Metadata::new("file-stats", "Counts files and lines per language in the workspace and lists the largest files.", env!("CARGO_PKG_VERSION"))
            .author("skillplug")
            .when_to_use("To size up a codebase: which languages it uses, how big it is, where the big files are.")
            .when_not_to_use("To read or search file contents.")
            .thread_safe(true)
    }

    fn execute(ctx: Context) -> PluginResult {
        let started = Instant::now();
        let Some(workspace) = ctx.workspace_root.as_deref() else {
            return PluginResult::error("file-stats needs a workspace_root to scan");
        };
        let workspace = match fs::canonicalize(workspace) {
            Ok(p) => p,
            Err(e) => return PluginResult::error(format!("cannot open the workspace {workspace}: {e}")),
        };
        let sub = ctx.input.get("path").and_then(Value::as_str).unwrap_or(".");
        let root = match fs::canonicalize(workspace.join(sub)) {
            Ok(p) if p.starts_with(&workspace) => p,
            Ok(_) => return PluginResult::error(format!("path {sub:?} leaves the workspace")),
            Err(e) => return PluginResult::error(format!("cannot open {sub:?}: {e}")),
        };
        let top = ctx.input.get("top").and_then(Value::as_u64).unwrap_or(10) as usize;
        let max_files = ctx.input.get("max_files").and_then(Value::as_u64).unwrap_or(1_000_000);
        let include_ignored = ctx.input.get("include_ignored").and_then(Value::as_bool).unwrap_or(false);
        let ignore = Ignore::load(&root, include_ignored);
        let (totals, truncated) = walk(&root, &ignore, top, max_files);

        let mut languages: Vec<_> = totals.by_language.iter().collect();
        languages.sort_by(|a, b| b.1.lines.cmp(&a.1.lines).then_with(|| b.1.bytes.cmp(&a.1.bytes)).then_with(|| a.0.cmp(b.0)));
        let relative = |p: &Path| p.strip_prefix(&workspace).unwrap_or(p).to_string_lossy().into_owned();
        let total = totals.by_language.values().fold(Tally::default(), |a, t| Tally { files: a.files + t.files, lines: a.lines + t.lines, bytes: a.bytes + t.bytes });
        PluginResult::ok(Value::object([
            ("root", Value::from(relative(&root))),
            ("files", Value::from(total.files)),
            ("lines", Value::from(total.lines)),
            ("bytes", Value::from(total.bytes)),
            (
                "languages",
                Value::Array(
                    languages
                        .iter()
                        .map(|(lang, t)| Value::object([("language", Value::from(**lang)), ("files", Value::from(t.files)), ("lines", Value::from(t.lines)), ("bytes", Value::from(t.bytes))]))
                        .collect(),
                ),
            ),
            (
                "largest",
                Value::Array(totals.largest.iter().map(|(bytes, lines, p)| Value::object([("path", Value::from(relative(p))), ("bytes", Value::from(*bytes)), ("lines", Value::from(*lines))])).collect()),
            ),
            ("skipped_entries", Value::from(totals.skipped)),
            ("unreadable", Value::from(totals.errors)),
            ("truncated", Value::from(truncated)),
            ("elapsed_ms", Value::from(started.elapsed().as_secs_f64() * 1000.0)),
        ]))
    }
}

export_plugin!(FileStats);
