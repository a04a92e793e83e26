//! Sampling speed: characters drawn per second from an (untrained) model, one
//! stream, through the same `Sampler` `charrnn sample` uses.

use charrnn::linalg::Real;
use charrnn::model::{Cell, Config, Model};
use charrnn::sample::{self, Draw, Sampler};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The binary's allocator, so the benches measure what `charrnn` runs.
#[global_allocator]
static ALLOCATOR: charrnn::parallel::LineAligned = charrnn::parallel::LineAligned;

const CHARS: usize = 1000;

fn bench<T: Real>(c: &mut Criterion, name: &str, config: Config) {
    let model = Model::<T>::init(config, &mut ChaCha8Rng::seed_from_u64(0));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("sample");
    g.throughput(Throughput::Elements(CHARS as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut sampler = Sampler::new(&model, Draw::default()).unwrap();
            let mut last = 0;
            sample::generate(&mut sampler, &[0], CHARS, &mut rng, |id| {
                last = id;
                Ok::<_, ()>(())
            })
            .unwrap();
            last
        })
    });
}

fn samples(c: &mut Criterion) {
    bench::<f64>(c, "rnn_h100_f64", Config::min_char_rnn(65, 100));
    bench::<f64>(c, "rnn_h512_f64", Config::min_char_rnn(65, 512));
    bench::<f32>(
        c,
        "lstm_h256_e64_f32",
        Config {
            cell: Cell::Lstm,
            vocab: 65,
            hidden: 256,
            layers: 1,
            embedding: 64,
        },
    );
    bench::<f32>(
        c,
        "lstm_2x512_e64_f32",
        Config {
            cell: Cell::Lstm,
            vocab: 65,
            hidden: 512,
            layers: 2,
            embedding: 64,
        },
    );
}

criterion_group! {
    name = sampling;
    // no plots: criterion draws them with plotters, whose ab_glyph font feature (for
    // `charrnn plot`) has no font registered in this process
    config = Criterion::default().sample_size(20).without_plots();
    targets = samples
}
criterion_main!(sampling);
