//! The analytic gradients of every parameter tensor agree with central finite
//! differences of the objective, for every cell, with and without an embedding,
//! with 2 layers, with several streams and with dropout.
//!
//! Checked in f64: with eps = 1e-5 the truncation error of a central difference is
//! O(eps^2 * f''') ~ 1e-10 and the rounding error ~ 1e-16 * |loss| / eps ~ 1e-10, so
//! a correct gradient agrees to ~1e-8 while a wrong term is off by far more than
//! the 1e-6 tolerance.

use std::sync::Arc;

use charrnn::model::{Cell, Config, Model, State, Workspace};
use charrnn::parallel::Pair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Case {
    config: Config,
    batch: usize,
    seq: usize,
    dropout: f64,
}

fn random_model(config: Config, rng: &mut ChaCha8Rng) -> Model<f64> {
    // weights well above the usual init so every term of the gradient matters
    let params = (0..config.num_params())
        .map(|_| rng.random_range(-0.6..0.6))
        .collect();
    Model::from_params(config, params)
}

fn random_state(config: &Config, batch: usize, rng: &mut ChaCha8Rng) -> State<f64> {
    let mut s = State::zeros(config, batch);
    s.h.iter_mut()
        .chain(s.c.iter_mut())
        .flatten()
        .for_each(|x| *x = rng.random_range(-0.5..0.5));
    s
}

fn check(case: Case) {
    let Case {
        config,
        batch,
        seq,
        dropout,
    } = case;
    let label = format!(
        "{} L={} E={} B={batch} dropout={dropout}",
        config.cell, config.layers, config.embedding
    );
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut model = random_model(config, &mut rng);
    let ids = |rng: &mut ChaCha8Rng| {
        (0..seq * batch)
            .map(|_| rng.random_range(0..config.vocab as u32))
            .collect::<Vec<_>>()
    };
    let (inputs, targets) = (ids(&mut rng), ids(&mut rng));
    let state0 = random_state(&config, batch, &mut rng);
    let mut ws = Workspace::new(config, seq, batch);
    ws.draw_dropout(dropout, &mut rng); // the same masks for every pass below

    let mut grads = vec![0.0; model.params.len()];
    let objective =
        model.forward_backward(&inputs, &targets, &mut state0.clone(), &mut grads, &mut ws);
    let loss = |m: &Model<f64>, ws: &mut Workspace<f64>| {
        m.forward_loss(&inputs, &targets, &mut state0.clone(), ws, 1.0) / batch as f64
    };
    assert!(
        (loss(&model, &mut ws) - objective).abs() < 1e-12,
        "{label}: objective differs between passes"
    );

    let eps = 1e-5;
    for spec in config.tensors() {
        let mut nonzero = 0;
        for i in spec.range() {
            let orig = model.params[i];
            model.params[i] = orig + eps;
            let plus = loss(&model, &mut ws);
            model.params[i] = orig - eps;
            let minus = loss(&model, &mut ws);
            model.params[i] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            let analytic = grads[i];
            assert!(
                (analytic - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "{label}: {}[{}]: analytic {analytic}, numeric {numeric}",
                spec.name,
                i - spec.offset
            );
            nonzero += usize::from(analytic.abs() > 1e-6);
        }
        // one-hot Wx and the embedding only have gradient in rows/columns of characters seen
        assert!(
            nonzero > spec.len() / 4,
            "{label}: {}: only {nonzero} of {} gradients are non-zero",
            spec.name,
            spec.len()
        );
    }
}

fn config(cell: Cell, layers: usize, embedding: usize) -> Config {
    Config {
        cell,
        vocab: 5,
        hidden: 4,
        layers,
        embedding,
    }
}

#[test]
fn rnn_one_hot_single_stream_as_min_char_rnn() {
    check(Case {
        config: config(Cell::Rnn, 1, 0),
        batch: 1,
        seq: 6,
        dropout: 0.0,
    });
}

#[test]
fn every_cell_with_embedding_two_layers_and_batch() {
    for &cell in Cell::ALL {
        check(Case {
            config: config(cell, 1, 0),
            batch: 1,
            seq: 5,
            dropout: 0.0,
        });
        check(Case {
            config: config(cell, 1, 3),
            batch: 1,
            seq: 5,
            dropout: 0.0,
        });
        check(Case {
            config: config(cell, 2, 0),
            batch: 3,
            seq: 4,
            dropout: 0.0,
        });
        check(Case {
            config: config(cell, 2, 3),
            batch: 3,
            seq: 4,
            dropout: 0.0,
        });
    }
}

/// With more characters than rows in a chunk the embedding is multiplied row by
/// row instead of through the (V, GH) table: that path is checked too.
#[test]
fn embedding_without_the_lookup_table() {
    for &cell in Cell::ALL {
        let config = Config {
            cell,
            vocab: 9,
            hidden: 4,
            layers: 2,
            embedding: 3,
        };
        check(Case {
            config,
            batch: 2,
            seq: 3,
            dropout: 0.0,
        });
    }
}

/// Chunks of 8 or more steps with H a multiple of 16 run the recurrence through Wh
/// packed in strips (vector-matrix kernels) rather than GEMM or row dot products:
/// checked too, in both directions of the pass, for one stream and several.
#[test]
fn the_packed_recurrence_for_one_stream_and_several() {
    for &cell in Cell::ALL {
        let config = Config {
            cell,
            vocab: 5,
            hidden: 16,
            layers: 2,
            embedding: 3,
        };
        check(Case {
            config,
            batch: 5,
            seq: 8,
            dropout: 0.0,
        });
        check(Case {
            config,
            batch: 1,
            seq: 9,
            dropout: 0.0,
        });
    }
}

/// One stream without dropout runs the output layer step by step over Why in
/// blocks, several steps at a time (see `Model::head`): checked with a vocabulary
/// wider than a 32-column block, for every cell.
#[test]
fn the_output_layer_step_by_step() {
    for &cell in Cell::ALL {
        let config = Config {
            cell,
            vocab: 33,
            hidden: 40,
            layers: 1,
            embedding: 0,
        };
        check(Case {
            config,
            batch: 1,
            seq: 16,
            dropout: 0.0,
        });
    }
}

#[test]
fn every_cell_with_dropout() {
    for &cell in Cell::ALL {
        check(Case {
            config: config(cell, 2, 3),
            batch: 2,
            seq: 4,
            dropout: 0.3,
        });
    }
}

/// A batch of B streams computes exactly what B single-stream passes compute: the
/// objective and gradient are their mean, and each stream's carried state is its own.
#[test]
fn a_batch_equals_separate_single_stream_passes() {
    for &cell in Cell::ALL {
        let (b, seq) = (4, 6);
        let config = config(cell, 2, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let model = random_model(config, &mut rng);
        let streams: Vec<Vec<u32>> = (0..b)
            .map(|_| (0..=seq).map(|_| rng.random_range(0..5)).collect())
            .collect();
        let start = random_state(&config, b, &mut rng);

        // time-major batch: row t*B + s is step t of stream s
        let inputs: Vec<u32> = (0..seq)
            .flat_map(|t| streams.iter().map(move |s| s[t]))
            .collect();
        let targets: Vec<u32> = (0..seq)
            .flat_map(|t| streams.iter().map(move |s| s[t + 1]))
            .collect();
        let mut batched_state = start.clone();
        let mut batched = vec![0.0; config.num_params()];
        let loss = model.forward_backward(
            &inputs,
            &targets,
            &mut batched_state,
            &mut batched,
            &mut Workspace::new(config, seq, b),
        );

        let (mut mean_loss, mut mean_grad) = (0.0, vec![0.0; config.num_params()]);
        let mut ws = Workspace::new(config, seq, 1);
        for (s, stream) in streams.iter().enumerate() {
            let h = config.hidden;
            let pick = |v: &Vec<Vec<f64>>| {
                v.iter()
                    .map(|layer| layer[s * h..(s + 1) * h].to_vec())
                    .collect()
            };
            let mut single = State {
                h: pick(&start.h),
                c: pick(&start.c),
            };
            let mut g = vec![0.0; config.num_params()];
            mean_loss +=
                model.forward_backward(&stream[..seq], &stream[1..], &mut single, &mut g, &mut ws)
                    / b as f64;
            mean_grad
                .iter_mut()
                .zip(&g)
                .for_each(|(m, x)| *m += x / b as f64);
            // equal up to rounding: the batch sums in GEMM order, one stream in matrix-vector order
            let close = |a: &Vec<Vec<f64>>, b: &Vec<Vec<f64>>| {
                a.iter()
                    .flatten()
                    .zip(b.iter().flatten())
                    .all(|(x, y)| (x - y).abs() < 1e-13)
            };
            assert!(
                close(&single.h, &pick(&batched_state.h)),
                "{cell}: stream {s} state"
            );
            assert!(
                close(&single.c, &pick(&batched_state.c)),
                "{cell}: stream {s} cell state"
            );
        }
        assert!(
            (loss - mean_loss).abs() < 1e-12 * loss.abs(),
            "{cell}: {loss} vs {mean_loss}"
        );
        for (a, m) in batched.iter().zip(&mean_grad) {
            assert!(
                (a - m).abs() < 1e-12 * (1.0 + m.abs()),
                "{cell}: gradient {a} vs {m}"
            );
        }
    }
}

/// Chunked training passes and one-character-at-a-time prediction compute the same
/// forward pass: the loss of a chunk equals the sum of -ln p over predict() steps.
#[test]
fn chunk_forward_equals_step_by_step_prediction() {
    // small matrices (transposed for sampling), and ones over 512 KB: packed in
    // strips when 16 divides their width (GH = 640, 480, 272), left as they are when not (270)
    let big = |cell, hidden| Config {
        cell,
        vocab: 5,
        hidden,
        layers: 2,
        embedding: 0,
    };
    let configs = Cell::ALL.iter().map(|&cell| config(cell, 2, 3)).chain([
        big(Cell::Lstm, 160),
        big(Cell::Gru, 160),
        big(Cell::Rnn, 272),
        big(Cell::Rnn, 270),
    ]);
    for config in configs {
        let cell = config.cell;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let model = random_model(config, &mut rng);
        let ids: Vec<u32> = (0..9).map(|_| rng.random_range(0..5)).collect();
        let chunk = model.forward_loss(
            &ids[..8],
            &ids[1..],
            &mut State::zeros(&config, 1),
            &mut Workspace::new(config, 8, 1),
            1.0,
        );
        let (mut state, mut ws, mut steps) =
            (State::zeros(&config, 1), Workspace::new(config, 1, 1), 0.0);
        // the sampler's layout of the weights (tables, transposes) computes the same
        ws.prepare_for_sampling(&model);
        for t in 0..8 {
            let logits = model.predict(&ids[t..t + 1], &mut state, &mut ws);
            let target = logits[ids[t + 1] as usize];
            steps += charrnn::linalg::softmax_in_place(logits) - target;
        }
        assert!(
            (chunk - steps).abs() < 1e-11 * chunk.abs().max(1.0),
            "{cell} {config:?}: {chunk} vs {steps}"
        );
    }
}

#[test]
fn f32_gradients_agree_with_f64() {
    let config = config(Cell::Lstm, 2, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let model64 = random_model(config, &mut rng);
    let model32 = Model::from_params(config, model64.params.iter().map(|&x| x as f32).collect());
    let (inputs, targets) = ([1u32, 2, 0, 4, 3, 1], [2u32, 0, 4, 3, 1, 1]);
    let mut g64 = vec![0.0; config.num_params()];
    let mut g32 = vec![0.0f32; config.num_params()];
    let l64 = model64.forward_backward(
        &inputs,
        &targets,
        &mut State::zeros(&config, 2),
        &mut g64,
        &mut Workspace::new(config, 3, 2),
    );
    let l32 = model32.forward_backward(
        &inputs,
        &targets,
        &mut State::zeros(&config, 2),
        &mut g32,
        &mut Workspace::new(config, 3, 2),
    );
    assert!((l64 - l32).abs() < 1e-5 * l64.abs());
    for (a, b) in g64.iter().zip(&g32) {
        // f32 carries ~7 significant digits; the chain of steps loses a little
        assert!((a - *b as f64).abs() < 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// A single stream's phases on two threads (the pair), and a tanh RNN's
/// recurrence split between them, compute every value as one thread does: loss,
/// gradients and carried state are bit-identical, for every cell, with one-hot
/// and embedded inputs and a second layer (the GEMM path).
#[test]
fn pair_and_split_recurrence_are_bit_identical_to_one_thread() {
    let pair = Arc::new(Pair::new().unwrap());
    let configs = [
        (Cell::Rnn, 32, 0, 7, 2),
        (Cell::Rnn, 64, 0, 7, 2),
        (Cell::Rnn, 80, 5, 7, 2),
        (Cell::Rnn, 100, 0, 7, 2),
        // not multiples of 16: Wh in 32-column blocks with a tail of 8 and of 6
        (Cell::Rnn, 40, 0, 7, 2),
        (Cell::Rnn, 70, 3, 7, 2),
        (Cell::Lstm, 16, 0, 7, 2),
        (Cell::Gru, 24, 6, 7, 2),
        // the default model's shape: the output layer beside the recurrence
        (Cell::Rnn, 100, 0, 65, 1),
    ];
    for (cell, hidden, embedding, vocab, layers) in configs {
        let config = Config {
            cell,
            vocab,
            hidden,
            layers,
            embedding,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let model = random_model(config, &mut rng);
        let inputs: Vec<u32> = (0..12).map(|_| rng.random_range(0..vocab as u32)).collect();
        let targets: Vec<u32> = (0..12).map(|_| rng.random_range(0..vocab as u32)).collect();
        let start = random_state(&config, 1, &mut rng);
        let run = |threads: Option<bool>| {
            let mut ws = Workspace::new(config, 12, 1);
            if let Some(split) = threads {
                ws.use_pair(Arc::clone(&pair), split);
            }
            let (mut state, mut grads) = (start.clone(), vec![0.0; config.num_params()]);
            let loss = model.forward_backward(&inputs, &targets, &mut state, &mut grads, &mut ws);
            (
                loss.to_bits(),
                grads.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
                state,
            )
        };
        let one = run(None);
        for split in [false, true] {
            let two = run(Some(split));
            let what = format!("{cell} hidden {hidden} embedding {embedding} split {split}");
            assert_eq!(one.0, two.0, "loss, {what}");
            assert!(one.1 == two.1, "gradients differ, {what}");
            assert_eq!(one.2, two.2, "state, {what}");
        }
    }
}
