//! Helpers shared by the integration tests: run the real binary in a temp dir.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use charrnn::train::TrainState;
use charrnn::train::checkpoint::{self, AnyState};

pub fn charrnn(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_charrnn"));
    cmd.current_dir(dir);
    cmd
}

/// A short English text (the first few KB of the built-in corpus).
pub fn small_text() -> &'static str {
    let t = charrnn::io::data::BUILTIN_TEXT;
    let end = t.char_indices().nth(6000).map_or(t.len(), |(i, _)| i);
    &t[..end]
}

pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

pub fn load_f64(path: &Path) -> TrainState<f64> {
    match checkpoint::load(path).unwrap() {
        AnyState::F64(s) => s,
        AnyState::F32(_) => panic!("{} holds an f32 run", path.display()),
    }
}

pub fn load_f32(path: &Path) -> TrainState<f32> {
    match checkpoint::load(path).unwrap() {
        AnyState::F32(s) => s,
        AnyState::F64(_) => panic!("{} holds an f64 run", path.display()),
    }
}

/// Data rows of a CSV file, each split on commas (the header is skipped).
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a test that needs a tool can run: true if nothing is `missing`; else
/// it says why it skips, unless CI's `require` variable is set (so a broken
/// install fails instead of skipping), where it panics.
pub fn can_run(what: &str, require: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    assert!(
        std::env::var_os(require).is_none(),
        "{what} required: {why}"
    );
    eprintln!("skipping the {what}: {why}");
    false
}

/// tests/browser, if the browser tests can run here (see [`can_run`]).
pub fn browser_scripts() -> Option<std::path::PathBuf> {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    can_run(
        "browser test",
        "CHARRNN_REQUIRE_BROWSER",
        browser_missing(&scripts),
    )
    .then_some(scripts)
}

/// Whether tmux is here for the terminal tests (see [`can_run`]).
pub fn tmux_present() -> bool {
    let missing = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err();
    can_run(
        "terminal test",
        "CHARRNN_REQUIRE_TMUX",
        missing.then(|| "tmux not found".into()),
    )
}

/// Why the browser test cannot run here, if it cannot.
fn browser_missing(scripts: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} not found (apt-get install chromium)"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node not found".into());
    }
    if !scripts.join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules missing (cd tests/browser && npm ci)".into());
    }
    None
}
