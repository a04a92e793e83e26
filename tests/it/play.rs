//! `charrnn export --format html`: the page runs the model in headless Chromium
//! (tests/browser/play.mjs) and its next-character probabilities match charrnn's.

use std::process::Command;

use charrnn::linalg::Real;
use charrnn::model::Cell;
use charrnn::sample::{Draw, Sampler};
use charrnn::train::TrainState;
use charrnn::train::checkpoint::{self, AnyState};

use crate::common::{browser_scripts, charrnn, small_text, stderr, write};

/// charrnn's own distribution after each prime (characters it does not know left out).
fn probs<T: Real>(s: &TrainState<T>, primes: &[String]) -> Vec<Vec<f64>> {
    primes
        .iter()
        .map(|prime| {
            let mut sampler = Sampler::new(&s.model, Draw::default()).unwrap();
            prime
                .chars()
                .filter_map(|c| s.vocab.id(c))
                .for_each(|id| sampler.feed(id));
            sampler.probs().iter().map(|p| p.as_f64()).collect()
        })
        .collect()
}

#[test]
fn the_page_predicts_as_charrnn_does_for_every_cell_and_streams_pauses_and_hovers() {
    let Some(scripts) = browser_scripts() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let mut models = vec![];
    for cell in Cell::ALL.iter().map(|c| c.name()) {
        for layers in ["1", "2"] {
            for embedding in ["0", "12"] {
                models.push((cell, layers, embedding, "f64"));
            }
        }
    }
    models.push(("lstm", "2", "12", "f32"));
    let mut pages = vec![];
    for &(cell, layers, embedding, precision) in &models {
        let name = format!("{cell}-{layers}-{embedding}-{precision}");
        let out = charrnn(d)
            .args([
                "train", "--data", "t.txt", "--cell", cell, "--layers", layers,
            ])
            .args([
                "--embedding-size",
                embedding,
                "--precision",
                precision,
                "--hidden-size",
                "20",
            ])
            .args([
                "--iters",
                "120",
                "--sample-every",
                "0",
                "--log-every",
                "0",
                "--rng-seed",
                "2",
            ])
            .args([
                "--checkpoint",
                &format!("{name}.ckpt"),
                "--loss-csv",
                &format!("{name}.csv"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let out = charrnn(d)
            .args([
                "export",
                "--checkpoint",
                &format!("{name}.ckpt"),
                "-o",
                &format!("{name}.html"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        pages.push(name);
    }
    // a page whose cell this charrnn does not have (a model from a later release,
    // say): it must refuse to run, not run another cell's equations
    let first = std::fs::read_to_string(d.join(format!("{}.html", pages[0]))).unwrap();
    let cell = format!("\"cell\":\"{}\"", models[0].0);
    assert!(first.contains(&cell));
    write(d, "mgu.html", first.replace(&cell, "\"cell\":\"mgu\""));
    let primes: Vec<String> = ["The ", "a☃b\n", &small_text()[100..700]]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let job = serde_json::json!({
        "pages": pages.iter().map(|p| d.join(format!("{p}.html"))).chain([d.join("mgu.html")]).collect::<Vec<_>>(),
        "primes": primes,
        "shot": d.join("shot.png"),
    });
    write(d, "job.json", job.to_string());
    let out = Command::new("node")
        .arg(scripts.join("play.mjs"))
        .arg(d.join("job.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let unknown = results.last().unwrap();
    let known: Vec<&str> = Cell::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        unknown["note"],
        format!(
            "This page cannot run a \"mgu\" cell (it knows {}); export the page again with the charrnn that trained the model.",
            known.join(", ")
        )
    );
    assert!(unknown["runs"] == false, "no model API: {unknown}");
    let mut worst = 0.0f64;
    for (name, r) in pages.iter().zip(&results) {
        assert_eq!(r["errors"], serde_json::json!([]), "{name}: console errors");
        assert_eq!(
            r["requests"],
            serde_json::json!([]),
            "{name}: the page fetched something"
        );
        let ours = match checkpoint::load(&d.join(format!("{name}.ckpt"))).unwrap() {
            AnyState::F64(s) => probs(&s, &primes),
            AnyState::F32(s) => probs(&s, &primes),
        };
        for (prime, (want, got)) in primes
            .iter()
            .zip(ours.iter().zip(r["probs"].as_array().unwrap()))
        {
            let got: Vec<f64> = got
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            assert_eq!(got.len(), want.len());
            for (v, (&a, &b)) in want.iter().zip(&got).enumerate() {
                let rel = (a - b).abs() / a;
                worst = worst.max(rel);
                assert!(
                    rel <= 1e-5,
                    "{name}, prime {prime:?}, char {v}: charrnn {a} page {b}"
                );
            }
        }
        let draws = r["draws"].as_array().unwrap();
        assert_eq!(draws[0], draws[1], "{name}: a seeded draw is reproducible");
        assert_ne!(
            draws[0], draws[2],
            "{name}: another seed draws another text"
        );
        assert_eq!(draws[0].as_str().unwrap().chars().count(), 200);
    }
    eprintln!("worst relative difference in the next-character probabilities: {worst:.2e}");

    // the user's path, on the first page
    let r = &results[0];
    let text = r["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 3004, "the prime and 3000 characters");
    assert_eq!(
        text,
        format!("The {}", r["same_seed"].as_str().unwrap()),
        "the page draws as its seeded API"
    );
    assert!(
        r["paused"].as_u64().unwrap() < 3004,
        "Pause stopped it before the end"
    );
    assert_eq!(
        r["paused"], r["stillPaused"],
        "nothing was drawn while paused"
    );
    assert_eq!(r["tip"]["visible"], true);
    assert_eq!(r["tip"]["rows"], 5);
    assert!(r["tip"]["text"].as_str().unwrap().contains('%'));
    assert!(
        r["coloured"].as_u64().unwrap() > 250,
        "choosing a unit colours the text"
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(d.join("shot.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let bpp = info.line_size / info.width as usize;
    let mut colours: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(bpp).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "screenshot has only {} colours",
        colours.len()
    );
}

#[test]
fn the_default_models_page_is_small_and_html_is_chosen_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = charrnn(d)
        .args([
            "train",
            "--iters",
            "20",
            "--sample-every",
            "0",
            "--log-every",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = charrnn(d)
        .args(["export", "-o", "play.html"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let size = std::fs::metadata(d.join("play.html")).unwrap().len();
    assert!(size < 500_000, "the default model's page is {size} bytes");
    let page = std::fs::read_to_string(d.join("play.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("window.charrnn"));
    let out = charrnn(d)
        .args(["export", "-o", "page.txt", "--format", "html"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(d.join("page.txt")).unwrap().len() as u64,
        size
    );
}
