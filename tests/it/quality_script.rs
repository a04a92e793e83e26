//! scripts/quality.sh, the README's five-minute recipe: its last line is the
//! final and the best validation loss, read off the run's own output.

use crate::common::*;

#[test]
fn quality_script_ends_with_the_final_and_best_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // enough for the recipe's 64 streams of 100 characters after holding out 10%
    write(d, "t.txt", small_text().repeat(10));
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/quality.sh"))
            .arg(d.join("t.txt"))
            .arg("3")
            .env("BIN", env!("CARGO_BIN_EXE_charrnn"))
            .env("OUT", d.join("run"))
            .env("EVAL_EVERY", "1")
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let so = stdout(&out);
    let last: Vec<&str> = so.lines().last().unwrap().split(' ').collect();
    assert_eq!(
        (last.len(), last[0], last[2]),
        (4, "val_loss", "best"),
        "{so}"
    );
    let (fin, best): (f64, f64) = (last[1].parse().unwrap(), last[3].parse().unwrap());

    // the same numbers as the training log: its final validation and the least
    // of all, periodic ones included
    let log = std::fs::read_to_string(d.join("run/train.log")).unwrap();
    let final_line = log
        .lines()
        .find(|l| l.starts_with("validation loss at iteration"))
        .unwrap();
    let logged = |l: &str, key: &str| -> f64 {
        let v = &l[l.find(key).unwrap() + key.len()..];
        v.split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(fin, logged(final_line, ": "), "{log}");
    let periodic: Vec<f64> = log
        .lines()
        .filter(|l| l.starts_with("iter ") && l.contains(": validation loss "))
        .map(|l| logged(l, "validation loss "))
        .collect();
    assert!(!periodic.is_empty(), "EVAL_EVERY=1 evaluates: {log}");
    let least = periodic.iter().fold(fin, |a, &b| a.min(b));
    assert!((best - least).abs() < 1e-9, "{best} vs {least}: {log}");
    assert!(d.join("run/charrnn.ckpt").exists());
}

/// The recipe's flags as `charrnn train` gets them from `text` (a shell command
/// over lines joined by `\`), leaving out the ones each place sets its own way:
/// the data, the time limit, and the script's checkpoint, overwrite and quiet
/// sampling; the script's `${EVAL_EVERY:-250}` reads as its default.
fn recipe_flags(text: &str) -> Vec<String> {
    let own = [
        "--data",
        "--max-time",
        "--checkpoint",
        "--force",
        "--sample-every",
    ];
    let words: Vec<String> = text
        .replace("\"${EVAL_EVERY:-250}\"", "250")
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(str::to_string)
        .collect();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let flag = &words[i];
        let value = words.get(i + 1).filter(|v| !v.starts_with("--"));
        if flag.starts_with("--") && !own.contains(&flag.as_str()) {
            flags.push(format!("{flag} {}", value.map_or("", |v| v.as_str())));
        }
        i += 1 + value.is_some() as usize;
    }
    flags.sort();
    flags
}

#[test]
fn the_script_runs_the_readme_recipe() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let script = std::fs::read_to_string(format!("{root}/scripts/quality.sh")).unwrap();
    let recipes = &readme[readme.find("## Recipes").expect("a Recipes section")..];
    let block = &recipes[recipes.find("```sh\n").unwrap() + 6..];
    let command = &block[..block.find("```").unwrap()];
    assert!(command.starts_with("charrnn train "), "{command}");
    let run = &script[script
        .find("\"$BIN\" train ")
        .expect("the script's train command")..];
    let run = &run[..run.find("2>&1").unwrap()];
    let (a, b) = (recipe_flags(command), recipe_flags(run));
    assert!(a.len() >= 10, "{a:?}");
    assert_eq!(a, b, "README.md \"Recipes\" and scripts/quality.sh differ");
}
