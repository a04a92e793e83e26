//! One min-char-rnn training iteration (forward, backward, clip, Adagrad) at the
//! default size: hidden 100, seq_length 25, vocabulary 65 (tinyshakespeare's).

use charrnn::linalg::Real;
use charrnn::model::{Rnn, RnnDims, Workspace};
use charrnn::optim::{self, Adagrad};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench_iteration<T: Real>(c: &mut Criterion, name: &str) {
    let (vocab, hidden, seq) = (65, 100, 25);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let dims = RnnDims { vocab, hidden };
    let mut model = Rnn::<T>::init(dims, &mut rng);
    let ids: Vec<u32> = (0..seq + 1).map(|_| rng.random_range(0..vocab as u32)).collect();
    let mut grads = vec![T::zero(); dims.num_params()];
    let mut ws = Workspace::new(dims, seq);
    let mut optim = Adagrad::new(T::c(0.1), dims.num_params());
    let mut h = vec![T::zero(); hidden];
    c.bench_function(name, |b| {
        b.iter(|| {
            let loss = model.forward_backward(&ids[..seq], &ids[1..], &mut h, &mut grads, &mut ws);
            optim::clip(&mut grads, T::c(5.0));
            optim.step(&mut model.params, &grads);
            loss
        })
    });
}

fn benches(c: &mut Criterion) {
    bench_iteration::<f32>(c, "train_iteration/rnn_h100_seq25_f32");
    bench_iteration::<f64>(c, "train_iteration/rnn_h100_seq25_f64");
}

criterion_group!(train_step, benches);
criterion_main!(train_step);
