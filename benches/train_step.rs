//! One training iteration (data walk, forward, backward, clipping, update) through
//! the same `Trainer::step` the CLI uses, on random text with tinyshakespeare's
//! vocabulary size (65).

use charrnn::io::data::{TextInfo, Vocab};
use charrnn::linalg::Real;
use charrnn::model::{Cell, Config};
use charrnn::optim::Kind;
use charrnn::train::{Hyper, LearningRate, TrainState, Trainer};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The binary's allocator, so the benches measure what `charrnn` runs.
#[global_allocator]
static ALLOCATOR: charrnn::parallel::LineAligned = charrnn::parallel::LineAligned;

const V: usize = 65;

fn trainer<T: Real>(config: Config, hyper: Hyper, threads: usize) -> (Trainer<T>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<u32> = (0..200_000)
        .map(|_| rng.random_range(0..V as u32))
        .collect();
    let vocab = Vocab::from_sorted(
        (0..V as u32)
            .map(|i| char::from_u32(32 + i).unwrap())
            .collect(),
    )
    .unwrap();
    // the optimizer's default rate: min-char-rnn's 0.1 for Adagrad, 2e-3 for Adam
    let rate = LearningRate::constant(hyper.optimizer.default_learning_rate());
    let text = TextInfo {
        name: "random".into(),
        chars: ids.len() as u64,
        bytes: ids.len() as u64,
        hash: 0,
    };
    (
        Trainer::new(
            TrainState::new(config, hyper, rate, vocab, text, None),
            threads,
        ),
        ids,
    )
}

fn bench<T: Real>(c: &mut Criterion, name: &str, config: Config, hyper: Hyper) {
    bench_threads::<T>(c, name, config, hyper, 1);
}

/// With 2 threads a single stream's phases split over the pair (the CLI's
/// default on two cores).
fn bench_threads<T: Real>(
    c: &mut Criterion,
    name: &str,
    config: Config,
    hyper: Hyper,
    threads: usize,
) {
    let (mut t, ids) = trainer::<T>(config, hyper, threads);
    c.bench_function(name, |b| b.iter(|| t.step((&ids).into()).unwrap()));
}

fn adam_hyper(seq_length: usize, batch_size: usize) -> Hyper {
    Hyper {
        seq_length,
        batch_size,
        optimizer: Kind::Adam {
            beta1: 0.9,
            beta2: 0.999,
        },
        ..Hyper::default()
    }
}

fn default_rnn(c: &mut Criterion) {
    let config = Config::min_char_rnn(V, 100);
    bench::<f64>(
        c,
        "train_iteration/rnn_h100_seq25_f64",
        config,
        Hyper::default(),
    );
    bench::<f32>(
        c,
        "train_iteration/rnn_h100_seq25_f32",
        config,
        Hyper::default(),
    );
    bench_threads::<f64>(
        c,
        "train_iteration/rnn_h100_seq25_f64_2threads",
        config,
        Hyper::default(),
        2,
    );
}

fn large(c: &mut Criterion) {
    let rnn512 = Config::min_char_rnn(V, 512);
    bench::<f64>(
        c,
        "train_iteration/rnn_h512_seq25_f64",
        rnn512,
        Hyper::default(),
    );
    bench::<f32>(
        c,
        "train_iteration/rnn_h512_seq25_f32",
        rnn512,
        Hyper::default(),
    );
    bench_threads::<f64>(
        c,
        "train_iteration/rnn_h512_seq25_f64_2threads",
        rnn512,
        Hyper::default(),
        2,
    );
    bench_threads::<f32>(
        c,
        "train_iteration/rnn_h512_seq25_f32_2threads",
        rnn512,
        Hyper::default(),
        2,
    );
    // one thread: criterion measures the single-core kernels; the CLI splits batches over cores
    let lstm = Config {
        cell: Cell::Lstm,
        vocab: V,
        hidden: 256,
        layers: 1,
        embedding: 64,
    };
    bench::<f32>(
        c,
        "train_iteration/lstm_h256_e64_b32_seq50_f32",
        lstm,
        adam_hyper(50, 32),
    );
    let lstm2 = Config {
        cell: Cell::Lstm,
        vocab: V,
        hidden: 512,
        layers: 2,
        embedding: 64,
    };
    bench::<f32>(
        c,
        "train_iteration/lstm_2x512_e64_b32_seq50_f32",
        lstm2,
        adam_hyper(50, 32),
    );
    // the pair as the CLI runs these on two cores: one half-batch share per
    // thread (`shares` = threads.min(batch)); issue 18's side-by-side with PyTorch
    let shared = |batch: usize| Hyper {
        shares: 2.min(batch),
        ..adam_hyper(50, batch)
    };
    bench_threads::<f32>(
        c,
        "train_iteration/lstm_h256_e64_b32_seq50_f32_2threads",
        lstm,
        shared(32),
        2,
    );
    bench_threads::<f32>(
        c,
        "train_iteration/lstm_2x512_e64_b32_seq50_f32_2threads",
        lstm2,
        shared(32),
        2,
    );
}

criterion_group! {
    name = small;
    // no plots: see benches/sample.rs (with them, a second run panicked drawing
    // the comparison with the first)
    config = Criterion::default().without_plots();
    targets = default_rnn
}
criterion_group! {
    name = big;
    // no plots: see benches/sample.rs
    config = Criterion::default().sample_size(10).without_plots();
    targets = large
}
criterion_main!(small, big);
