//! The analytic gradients of every parameter tensor agree with central finite
//! differences of the loss.
//!
//! Checked in f64: with eps = 1e-5 the truncation error of a central difference is
//! O(eps^2 * f''') ~ 1e-10 and the rounding error ~ 1e-16 * |loss| / eps ~ 1e-10, so a
//! correct gradient agrees to ~1e-8 while a wrong term is off by far more than the
//! 1e-6 tolerance. The numeric side uses `Rnn::loss` (the one-step inference path),
//! so the batched forward pass is checked against an independent implementation too.

use charrnn::model::{Rnn, RnnDims, Workspace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_model(rng: &mut ChaCha8Rng) -> Rnn<f64> {
    let dims = RnnDims { vocab: 5, hidden: 7 };
    // weights well above min-char-rnn's 0.01 so every term of the gradient matters
    let params = (0..dims.num_params()).map(|_| rng.random_range(-0.6..0.6)).collect();
    Rnn::from_params(dims, params)
}

#[test]
fn rnn_gradients_match_central_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut model = small_model(&mut rng);
    let inputs = [0u32, 3, 1, 4, 4, 2];
    let targets = [3u32, 1, 4, 4, 2, 0];
    let h0: Vec<f64> = (0..7).map(|_| rng.random_range(-0.5..0.5)).collect();

    let mut grads = vec![0.0; model.params.len()];
    let mut ws = Workspace::new(model.dims, inputs.len());
    let mut h = h0.clone();
    let loss = model.forward_backward(&inputs, &targets, &mut h, &mut grads, &mut ws);

    let mut h_check = h0.clone();
    assert!((model.loss(&inputs, &targets, &mut h_check) - loss).abs() < 1e-12);
    for (a, b) in h.iter().zip(&h_check) {
        assert!((a - b).abs() < 1e-14, "final hidden state differs");
    }

    let eps = 1e-5;
    let mut offset = 0;
    for (name, [rows, cols]) in model.dims.shapes() {
        let mut nonzero = 0;
        for (i, &analytic) in grads.iter().enumerate().skip(offset).take(rows * cols) {
            let orig = model.params[i];
            model.params[i] = orig + eps;
            let plus = model.loss(&inputs, &targets, &mut h0.clone());
            model.params[i] = orig - eps;
            let minus = model.loss(&inputs, &targets, &mut h0.clone());
            model.params[i] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                (analytic - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "{name}[{}]: analytic {analytic}, numeric {numeric}",
                i - offset
            );
            nonzero += usize::from(analytic.abs() > 1e-4);
        }
        // Wxh only has gradient in the columns of characters that occur as inputs
        assert!(nonzero >= rows * cols / 2, "{name}: only {nonzero} non-zero gradients");
        offset += rows * cols;
    }
}

#[test]
fn f32_gradients_agree_with_f64() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let model64 = small_model(&mut rng);
    let model32 = Rnn::from_params(model64.dims, model64.params.iter().map(|&x| x as f32).collect());
    let (inputs, targets) = ([1u32, 2, 0, 4, 3], [2u32, 0, 4, 3, 1]);
    let mut g64 = vec![0.0; model64.params.len()];
    let mut g32 = vec![0.0f32; model64.params.len()];
    let l64 =
        model64.forward_backward(&inputs, &targets, &mut [0.0; 7], &mut g64, &mut Workspace::new(model64.dims, 5));
    let l32 =
        model32.forward_backward(&inputs, &targets, &mut [0.0; 7], &mut g32, &mut Workspace::new(model32.dims, 5));
    assert!((l64 - l32).abs() < 1e-5 * l64.abs());
    for (a, b) in g64.iter().zip(&g32) {
        // f32 carries ~7 significant digits; the chain of T steps loses a little
        assert!((a - *b as f64).abs() < 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
}
