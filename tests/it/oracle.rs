//! Every fast path of the network against the oracle (tests/it/plain), a plain f64
//! implementation of the same equations: the loss, every gradient, the carried
//! state and the logits, for every cell, 1 and 2 layers, one-hot input and both
//! embedding paths (the (V, GH) table when V <= T*B, row by row otherwise), one
//! stream and several, with and without dropout, at hidden sizes that reach each
//! layout of the recurrent product, on one thread and on the pair (phases split
//! in halves, and the recurrence itself split).
//!
//! Tolerance in f64: 1e-12 of the largest value of each tensor. The fast paths
//! sum in other orders (8-lane and two-part dot products, GEMM's blocking) and
//! use fused multiply-adds and their own exp and tanh (about 1 ulp), so they
//! differ from the oracle by a few hundred ulp of a tensor's largest entry
//! after T steps of backpropagation (the worst measured is printed); a wrong
//! index, offset or missing term is off by far more than 1e-12.

use std::sync::Arc;

use charrnn::model::{Cell, Config, Model, State, Workspace, stream_scale};
use charrnn::parallel::Pair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
struct Case {
    cell: Cell,
    layers: usize,
    hidden: usize,
    embedding: usize,
    vocab: usize,
    batch: usize,
    seq: usize,
    dropout: f64,
}

/// How the workspace runs: one thread, the pair, the pair with the recurrence split.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Threads {
    One,
    Pair,
    Split,
}

const THREADS: [Threads; 3] = [Threads::One, Threads::Pair, Threads::Split];

impl Case {
    fn config(&self) -> Config {
        let Case {
            cell,
            vocab,
            hidden,
            layers,
            embedding,
            ..
        } = *self;
        Config {
            cell,
            vocab,
            hidden,
            layers,
            embedding,
        }
    }
}

/// Weights of about 1/sqrt(fan-in), so pre-activations stay O(1): a saturated
/// tanh would make (1 - h^2) lose digits and test the activations' last ulp.
fn model<T: charrnn::linalg::Real>(config: Config, rng: &mut ChaCha8Rng) -> Model<f64> {
    let mut params = vec![0.0; config.num_params()];
    for spec in config.tensors() {
        let bound = if spec.shape[1] > 1 {
            1.5 / (spec.shape[1] as f64).sqrt()
        } else {
            0.5
        };
        params[spec.range()]
            .iter_mut()
            .for_each(|w| *w = rng.random_range(-bound..bound));
    }
    // exact in T: an f32 model then holds the same values as the oracle's
    let params = params.iter().map(|&w| T::c(w).as_f64()).collect();
    Model::from_params(config, params)
}

/// The largest |a - b| of a tensor over its largest |b| (infinite when a holds
/// NaN or infinity, which `f64::max` would pass over).
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    if !a.iter().all(|x| x.is_finite()) {
        return f64::INFINITY;
    }
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let worst = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    if scale == 0.0 { worst } else { worst / scale }
}

/// Runs `case` through the library in precision T and through the oracle, and
/// returns the worst relative difference over the loss, the gradient tensors and
/// the state, naming where it is.
fn compare<T: charrnn::linalg::Real>(
    case: Case,
    threads: Threads,
    pair: &Arc<Pair>,
    seed: u64,
) -> (f64, String) {
    let config = case.config();
    let (b, seq) = (case.batch, case.seq);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m64 = model::<T>(config, &mut rng);
    let ids = |rng: &mut ChaCha8Rng| {
        (0..seq * b)
            .map(|_| rng.random_range(0..case.vocab as u32))
            .collect::<Vec<_>>()
    };
    let (inputs, targets) = (ids(&mut rng), ids(&mut rng));
    let mut s64 = State::<f64>::zeros(&config, b);
    s64.h
        .iter_mut()
        .chain(s64.c.iter_mut())
        .flatten()
        .for_each(|x| *x = T::c(rng.random_range(-0.5..0.5)).as_f64());

    let to_t = |v: &[f64]| v.iter().map(|&x| T::c(x)).collect::<Vec<T>>();
    let to_f64 = |v: &[T]| v.iter().map(|x| x.as_f64()).collect::<Vec<f64>>();
    let model_t = Model::from_params(config, to_t(&m64.params));
    let mut state = State {
        h: s64.h.iter().map(|v| to_t(v)).collect(),
        c: s64.c.iter().map(|v| to_t(v)).collect(),
    };
    let mut ws = Workspace::<T>::new(config, seq, b);
    match threads {
        Threads::One => {}
        Threads::Pair => ws.use_pair(Arc::clone(pair), false),
        Threads::Split => ws.use_pair(Arc::clone(pair), true),
    }
    ws.draw_dropout(case.dropout, &mut rng);
    let masks: Vec<Vec<f64>> = ws.dropout_masks().iter().map(|m| to_f64(m)).collect();
    // NaN: `backward` overwrites every gradient, so none may be read first
    let mut grads = vec![T::nan(); config.num_params()];
    let objective = model_t.forward_backward(&inputs, &targets, &mut state, &mut grads, &mut ws);

    let chunk = crate::plain::Chunk {
        inputs: &inputs,
        targets: &targets,
        batch: b,
        h0: &s64.h,
        c0: &s64.c,
        masks: &masks,
        scale: stream_scale::<f64>(b),
    };
    let want = crate::plain::pass(&config, &m64.params, &chunk);

    let mut worst = ((objective - want.loss / b as f64) / (want.loss / b as f64)).abs();
    let mut at = "loss".to_string();
    let mut note = |d: f64, what: String| {
        if d > worst || d.is_nan() {
            (worst, at) = (d, what);
        }
    };
    let grads = to_f64(&grads);
    for spec in config.tensors() {
        note(
            rel(&grads[spec.range()], &want.grads[spec.range()]),
            format!("d{}", spec.name),
        );
    }
    for l in 0..case.layers {
        note(
            rel(&to_f64(&state.h[l]), &want.h[l]),
            format!("h of layer {l}"),
        );
        if case.cell == Cell::Lstm {
            note(
                rel(&to_f64(&state.c[l]), &want.c[l]),
                format!("c of layer {l}"),
            );
        }
    }
    (worst, at)
}

/// Checks every case on every threading in f64 within 1e-12; prints the worst.
fn check_all(cases: &[Case]) {
    let pair = Arc::new(Pair::new().unwrap());
    let mut worst = (0.0, String::new());
    for (i, &case) in cases.iter().enumerate() {
        for threads in THREADS {
            let (d, at) = compare::<f64>(case, threads, &pair, 100 + i as u64);
            let what = format!("{case:?} on {threads:?}: {at}");
            assert!(
                d <= 1e-12,
                "{what} differs from the oracle by {d:.3e} of its largest value"
            );
            if d > worst.0 {
                worst = (d, what);
            }
        }
    }
    eprintln!(
        "{} cases x {} threadings: worst {:.3e} ({})",
        cases.len(),
        THREADS.len(),
        worst.0,
        worst.1
    );
}

/// Every cell there is (a new cell must teach the oracle its equations).
const CELLS: &[Cell] = Cell::ALL;

/// Inputs: one-hot, the embedding through the (V, GH) table (V <= T*B) and the
/// embedding row by row (V > T*B), for 1 and 2 layers, 1 and 3 streams, with and
/// without dropout, at hidden 32 (strips of 16 columns).
#[test]
fn every_cell_input_and_batch() {
    let mut cases = Vec::new();
    for &cell in CELLS {
        for layers in [1, 2] {
            for batch in [1, 3] {
                let seq = 9;
                for (embedding, vocab) in [(0, 11), (5, 7), (5, seq * batch + 4)] {
                    for dropout in [0.0, 0.3] {
                        cases.push(Case {
                            cell,
                            layers,
                            hidden: 32,
                            embedding,
                            vocab,
                            batch,
                            seq,
                            dropout,
                        });
                    }
                }
            }
        }
    }
    check_all(&cases);
}

/// Hidden sizes that reach each layout of the recurrent product: 100 and 150
/// (32-column blocks with tails of 4 and 22; for several streams, GEMM), 144 and 160
/// (strips; the split in strips of 16 lands off and on a multiple of 32), 512 (Wh
/// over 1 MB in f64). One stream and three, one and two layers.
#[test]
fn hidden_sizes_that_reach_each_recurrence_layout() {
    let mut cases = Vec::new();
    for &cell in CELLS {
        for hidden in [100, 144, 150, 160] {
            for (layers, batch) in [(1, 1), (2, 1), (1, 3)] {
                cases.push(Case {
                    cell,
                    layers,
                    hidden,
                    embedding: 0,
                    vocab: 13,
                    batch,
                    seq: 10,
                    dropout: 0.0,
                });
            }
        }
    }
    check_all(&cases);
}

/// Hidden 512 for each cell, one stream: the tanh RNN's split recurrence in strips
/// at the size the trainer splits it, and the output layer as a GEMM rather than
/// step by step (V H = 130 * 512 is over the step-by-step limit).
#[test]
fn hidden_512() {
    let mut cases = Vec::new();
    for &cell in CELLS {
        cases.push(Case {
            cell,
            layers: 1,
            hidden: 512,
            embedding: 0,
            vocab: 20,
            batch: 1,
            seq: 9,
            dropout: 0.0,
        });
    }
    cases.push(Case {
        cell: Cell::Rnn,
        layers: 1,
        hidden: 512,
        embedding: 0,
        vocab: 130,
        batch: 1,
        seq: 9,
        dropout: 0.0,
    });
    cases.push(Case {
        cell: Cell::Rnn,
        layers: 2,
        hidden: 512,
        embedding: 8,
        vocab: 30,
        batch: 2,
        seq: 8,
        dropout: 0.2,
    });
    check_all(&cases);
}

/// Chunks shorter than 8 steps multiply Wh as it is (no layout), and the
/// default model's shape (one-hot 65, hidden 100, 25 steps, the output layer
/// step by step beside the recurrence).
#[test]
fn short_chunks_and_the_default_model() {
    let mut cases = Vec::new();
    for &cell in CELLS {
        for batch in [1, 2] {
            cases.push(Case {
                cell,
                layers: 2,
                hidden: 48,
                embedding: 0,
                vocab: 9,
                batch,
                seq: 5,
                dropout: 0.0,
            });
        }
    }
    // an embedding wider than the hidden layers under an odd number of layers
    // above it (the gradients reaching each layer's inputs trade buffers once
    // a layer)
    for &cell in CELLS {
        for layers in [2, 3, 4] {
            cases.push(Case {
                cell,
                layers,
                hidden: 6,
                embedding: 45,
                vocab: 9,
                batch: 1,
                seq: 8,
                dropout: 0.0,
            });
        }
    }
    cases.push(Case {
        cell: Cell::Rnn,
        layers: 1,
        hidden: 100,
        embedding: 0,
        vocab: 65,
        batch: 1,
        seq: 25,
        dropout: 0.0,
    });
    check_all(&cases);
}

/// f32 against the f64 oracle, from the same (f32-exact) weights. f32 rounds at
/// 6e-8 and its exp, tanh and sigmoid are approximations within 3e-7; over 9
/// steps of backpropagation through 32-160 units the worst measured was 4.9e-7
/// of a tensor's largest value (a GRU's dWx), so 1e-5 leaves a 20x margin while
/// a wrong term is off by 1e-2 or more.
#[test]
fn f32_within_its_precision() {
    let pair = Arc::new(Pair::new().unwrap());
    let mut worst = (0.0, String::new());
    for (i, &cell) in CELLS.iter().enumerate() {
        for (hidden, batch, embedding, layers) in
            [(32, 1, 0, 2), (160, 1, 5, 1), (48, 3, 5, 2), (144, 1, 0, 1)]
        {
            let case = Case {
                cell,
                layers,
                hidden,
                embedding,
                vocab: 11,
                batch,
                seq: 9,
                dropout: 0.0,
            };
            for threads in THREADS {
                let (d, at) = compare::<f32>(case, threads, &pair, 200 + i as u64);
                let what = format!("{case:?} on {threads:?}: {at}");
                assert!(
                    d <= 1e-5,
                    "f32 {what} differs from the oracle by {d:.3e} of its largest value"
                );
                if d > worst.0 {
                    worst = (d, what);
                }
            }
        }
    }
    eprintln!("f32: worst {:.3e} ({})", worst.0, worst.1);
}

/// One character at a time through the sampler's layouts of the weights
/// (`prepare_for_sampling`: blocks up to 512 KB, strips above when 16 divides
/// the width, else the matrix as it is) gives the oracle's logits at every step.
#[test]
fn sampling_layouts_give_the_oracles_logits() {
    let shapes = [
        (Cell::Rnn, 1, 32, 0),
        (Cell::Rnn, 2, 256, 0), // Wh 512 KB: blocks
        (Cell::Rnn, 1, 260, 4), // 540 KB, 260 not a multiple of 16: as it is
        (Cell::Rnn, 2, 272, 0), // 592 KB: strips
        (Cell::Lstm, 2, 160, 6),
        (Cell::Gru, 2, 150, 0),
    ];
    let mut worst = 0.0f64;
    for (i, (cell, layers, hidden, embedding)) in shapes.into_iter().enumerate() {
        let config = Config {
            cell,
            vocab: 17,
            hidden,
            layers,
            embedding,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(300 + i as u64);
        let m = model::<f64>(config, &mut rng);
        let ids: Vec<u32> = (0..13).map(|_| rng.random_range(0..17)).collect();
        let state0 = State::<f64>::zeros(&config, 1);
        let chunk = crate::plain::Chunk {
            inputs: &ids[..12],
            targets: &ids[1..],
            batch: 1,
            h0: &state0.h,
            c0: &state0.c,
            masks: &[],
            scale: 1.0,
        };
        let want = crate::plain::pass(&config, &m.params, &chunk);
        let (mut state, mut ws) = (state0.clone(), Workspace::new(config, 1, 1));
        ws.prepare_for_sampling(&m);
        for t in 0..12 {
            let logits = m.predict(&ids[t..t + 1], &mut state, &mut ws).to_vec();
            let d = rel(&logits, &want.logits[t * 17..(t + 1) * 17]);
            assert!(
                d <= 1e-12,
                "{config:?} step {t}: logits differ from the oracle by {d:.3e}"
            );
            worst = worst.max(d);
        }
    }
    eprintln!("sampling layouts: worst {worst:.3e}");
}
