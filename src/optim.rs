//! Gradient clipping and the optimizers, over flat parameter buffers.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::linalg::{Real, dispatch};
use crate::parallel::Pair;

dispatch! {
    /// Clips every gradient element to [-limit, limit] (min-char-rnn's np.clip).
    /// NaN passes through unchanged so a diverged run is still detected.
    pub fn clip<T: Real>(grads: &mut [T], limit: T) {
        for g in grads {
            // two selects, so the loop vectorises; NaN fails both comparisons
            let high = if *g > limit { limit } else { *g };
            *g = if high < -limit { -limit } else { high };
        }
    }
}

dispatch! {
    /// m += g^2;  w -= lr g / sqrt(m + eps)
    pub fn adagrad<T: Real>(lr: T, eps: T, w: &mut [T], g: &[T], m: &mut [T]) {
        for ((w, &g), m) in w.iter_mut().zip(g).zip(m) {
            *m = fma!(g, g, *m);
            *w = *w - lr * g / (*m + eps).sqrt();
        }
    }
}

/// [`adagrad`] after clipping each gradient to [-limit, limit] (when given), in
/// one pass. f64 with AVX-512 takes 1/sqrt(m + eps) from the hardware's 14-bit
/// estimate refined by Newton's method instead of a square root and a division,
/// which share one slow unit: the same value to within [`RSQRT_ERROR`] (an ulp
/// or two), not always the correctly rounded one.
pub fn adagrad_clipped<T: Real>(
    lr: T,
    eps: T,
    limit: Option<T>,
    w: &mut [T],
    g: &mut [T],
    m: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() && rsqrt::available() {
        let f = |s: &mut [T]| {
            // SAFETY: T is f64 (checked above), so this is the same slice retyped
            unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f64>(), s.len()) }
        };
        let (lr, eps, limit) = (
            lr.as_f64(),
            eps.as_f64(),
            limit.map_or(f64::INFINITY, T::as_f64),
        );
        // SAFETY: available() checked that this CPU has AVX-512
        unsafe { rsqrt::adagrad_f64(lr, eps, limit, f(w), f(g), f(m)) };
        return;
    }
    if let Some(limit) = limit {
        clip(g, limit);
    }
    adagrad(lr, eps, w, g, m);
}

/// The largest relative error of [`adagrad_clipped`]'s step on the AVX-512 path
/// against -lr g / sqrt(m + eps) in f64 (tested).
pub const RSQRT_ERROR: f64 = 2.0 * f64::EPSILON;

#[cfg(target_arch = "x86_64")]
mod rsqrt {
    use std::arch::x86_64::*;

    /// Whether this CPU has AVX-512 (checked once).
    pub fn available() -> bool {
        use std::sync::OnceLock;
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            std::env::var_os("CHARRNN_NO_SIMD").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
        })
    }

    /// m += g^2;  w -= lr g r  with r = 1/sqrt(m + eps) from `vrsqrt14pd` (14
    /// bits) and two Newton steps r += r (1/2 - (x/2) r^2) (28, then all 53 bits,
    /// less the rounding of the steps), eight values at a time and the last ones
    /// under a mask, so that each value is computed the same way wherever the
    /// slices start and end (two threads updating halves get one thread's bits).
    /// A value for which that gives NaN (m + eps infinite or NaN) takes sqrt and
    /// division instead. Gradients are clipped to [-limit, limit] first.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn adagrad_f64(
        lr: f64,
        eps: f64,
        limit: f64,
        w: &mut [f64],
        g: &[f64],
        m: &mut [f64],
    ) {
        assert!(w.len() == g.len() && w.len() == m.len());
        let (vlr, veps, hi, lo) = (
            _mm512_set1_pd(lr),
            _mm512_set1_pd(eps),
            _mm512_set1_pd(limit),
            _mm512_set1_pd(-limit),
        );
        let half = _mm512_set1_pd(0.5);
        for i in (0..w.len()).step_by(8) {
            let lanes: __mmask8 = if w.len() - i >= 8 {
                0xff
            } else {
                (1u8 << (w.len() - i)) - 1
            };
            // SAFETY: the lanes in `lanes` are i.. up to the end of all three slices;
            // masked loads and stores touch no other
            unsafe {
                let (pw, pg, pm) = (
                    w.as_mut_ptr().add(i),
                    g.as_ptr().add(i),
                    m.as_mut_ptr().add(i),
                );
                // min and max return their second operand when one is NaN, so a
                // NaN gradient passes through, as in `clip`
                let full = lanes == 0xff;
                let load = |p: *const f64| {
                    if full {
                        _mm512_loadu_pd(p)
                    } else {
                        _mm512_maskz_loadu_pd(lanes, p)
                    }
                };
                let store = |p: *mut f64, v| {
                    if full {
                        _mm512_storeu_pd(p, v)
                    } else {
                        _mm512_mask_storeu_pd(p, lanes, v)
                    }
                };
                let gv = _mm512_max_pd(lo, _mm512_min_pd(hi, load(pg)));
                let mv = _mm512_fmadd_pd(gv, gv, load(pm));
                store(pm, mv);
                let x = _mm512_add_pd(mv, veps);
                let hx = _mm512_mul_pd(x, half);
                let mut r = _mm512_rsqrt14_pd(x);
                for _ in 0..2 {
                    let e = _mm512_fnmadd_pd(_mm512_mul_pd(hx, r), r, half);
                    r = _mm512_fmadd_pd(r, e, r);
                }
                let (step, wv) = (_mm512_mul_pd(vlr, gv), load(pw));
                let mut next = _mm512_fnmadd_pd(step, r, wv);
                let nan = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(r, r) & lanes;
                if nan != 0 {
                    let (mut out, mut was, mut gs, mut ms) =
                        ([0.0; 8], [0.0; 8], [0.0; 8], [0.0; 8]);
                    _mm512_storeu_pd(out.as_mut_ptr(), next);
                    _mm512_storeu_pd(was.as_mut_ptr(), wv);
                    _mm512_storeu_pd(gs.as_mut_ptr(), gv);
                    _mm512_storeu_pd(ms.as_mut_ptr(), mv);
                    for j in (0..8).filter(|j| nan & (1 << j) != 0) {
                        out[j] = was[j] - lr * gs[j] / (ms[j] + eps).sqrt();
                    }
                    next = _mm512_loadu_pd(out.as_ptr());
                }
                store(pw, next);
            }
        }
    }
}

dispatch! {
    /// m = d m + (1 - d) g^2;  w -= lr g / (sqrt(m) + eps)
    pub fn rmsprop<T: Real>(lr: T, d: T, eps: T, w: &mut [T], g: &[T], m: &mut [T]) {
        for ((w, &g), m) in w.iter_mut().zip(g).zip(m) {
            *m = d * *m + (T::one() - d) * g * g;
            *w = *w - lr * g / (m.sqrt() + eps);
        }
    }
}

dispatch! {
    /// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= step m / (sqrt(v) c + eps)
    pub fn adam<T: Real>(b1: T, b2: T, step: T, c: T, eps: T, w: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let one = T::one();
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
            *m = b1 * *m + (one - b1) * g;
            *v = b2 * *v + (one - b2) * g * g;
            *w = *w - step * *m / (v.sqrt() * c + eps);
        }
    }
}

/// Rescales the gradient so its global L2 norm is at most `max_norm` (PyTorch's
/// clip_grad_norm_). Returns the norm before clipping.
pub fn clip_norm<T: Real>(grads: &mut [T], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .map(|g| g.as_f64() * g.as_f64())
        .sum::<f64>()
        .sqrt();
    if norm > max_norm {
        let scale = T::c(max_norm / (norm + 1e-6));
        grads.iter_mut().for_each(|g| *g = *g * scale);
    }
    norm
}

/// Decoupled weight decay (PyTorch's AdamW): w <- w (1 - lr wd) on `weights`
/// (the ranges [`crate::model::Config::weight_ranges`] names); nothing when `wd`
/// is 0.
pub fn decay_weights<T: Real>(wd: f64, lr: f64, weights: &[Range<usize>], params: &mut [T]) {
    if wd == 0.0 {
        return;
    }
    let keep = T::c(1.0 - lr * wd);
    for r in weights {
        params[r.clone()].iter_mut().for_each(|w| *w = *w * keep);
    }
}

/// `s` before `r`, in `r`, and after it (all empty for an empty `s`).
fn three<'a, T>(s: &'a mut [T], r: &Range<usize>) -> [&'a mut [T]; 3] {
    let (a, rest) = s.split_at_mut(r.start.min(s.len()));
    let (b, c) = rest.split_at_mut(r.len().min(rest.len()));
    [a, b, c]
}

/// Which update rule, with its constants.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    /// m += g^2;  w -= lr g / sqrt(m + 1e-8)
    Adagrad,
    /// char-rnn's: m = decay m + (1 - decay) g^2;  w -= lr g / (sqrt(m) + 1e-8)
    RmsProp { decay: f64 },
    /// Adam with bias correction (PyTorch's form, eps 1e-8)
    Adam { beta1: f64, beta2: f64 },
}

/// An update rule by name, as `--optimizer` takes it (its constants come apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Rule {
    Adagrad,
    Rmsprop,
    Adam,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Adagrad => "adagrad",
            Rule::Rmsprop => "rmsprop",
            Rule::Adam => "adam",
        }
    }
}

impl Kind {
    pub fn rule(self) -> Rule {
        match self {
            Kind::Adagrad => Rule::Adagrad,
            Kind::RmsProp { .. } => Rule::Rmsprop,
            Kind::Adam { .. } => Rule::Adam,
        }
    }

    pub fn name(self) -> &'static str {
        self.rule().name()
    }

    /// The learning rate a run gets when none is given: min-char-rnn's 0.1 for
    /// Adagrad, char-rnn's 2e-3 for RMSprop, and 2e-3 for Adam.
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Kind::Adagrad => 0.1,
            _ => 2e-3,
        }
    }
}

pub const EPS: f64 = 1e-8;

/// An optimizer and its per-parameter state (same layout as the parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optimizer<T> {
    pub kind: Kind,
    /// Adagrad: sum of g^2; RMSprop: running mean of g^2; Adam: first moment.
    pub m: Vec<T>,
    /// Adam: second moment (empty otherwise).
    pub v: Vec<T>,
    /// Updates applied so far (Adam's bias correction uses it).
    pub steps: u64,
}

impl<T: Real> Optimizer<T> {
    pub fn new(kind: Kind, num_params: usize) -> Self {
        let v = if matches!(kind, Kind::Adam { .. }) {
            vec![T::zero(); num_params]
        } else {
            Vec::new()
        };
        Optimizer {
            kind,
            m: vec![T::zero(); num_params],
            v,
            steps: 0,
        }
    }

    /// One update, after clipping every gradient to [-clip, clip] when `clip` is
    /// given. With a pair, this thread clips and updates the elements `mine` and
    /// the helper the rest: every element is updated on its own, so the result is
    /// the same either way.
    pub fn step_clipped(
        &mut self,
        pair: Option<&Pair>,
        learning_rate: f64,
        params: &mut [T],
        grads: &mut [T],
        clip: Option<T>,
        mine: Range<usize>,
    ) {
        assert_eq!(params.len(), self.m.len());
        assert_eq!(grads.len(), self.m.len());
        self.steps += 1;
        let (lr, eps, kind, t) = (T::c(learning_rate), T::c(EPS), self.kind, self.steps as i32);
        let update = |w: &mut [T], g: &mut [T], m: &mut [T], v: &mut [T]| {
            // Adagrad clips as it goes; the others clip first
            if let (Some(limit), false) = (clip, kind == Kind::Adagrad) {
                self::clip(g, limit);
            }
            match kind {
                Kind::Adagrad => adagrad_clipped(lr, eps, clip, w, g, m),
                Kind::RmsProp { decay } => rmsprop(lr, T::c(decay), eps, w, g, m),
                Kind::Adam { beta1, beta2 } => {
                    // w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
                    let step = T::c(learning_rate / (1.0 - beta1.powi(t)));
                    let c = T::c(1.0 / (1.0 - beta2.powi(t)).sqrt());
                    adam(T::c(beta1), T::c(beta2), step, c, eps, w, g, m, v);
                }
            }
        };
        let (m, v) = (&mut self.m, &mut self.v);
        match pair {
            Some(pair) => {
                // three pieces: before `mine`, `mine`, after it (v is empty unless the
                // rule is Adam)
                let ([w0, w1, w2], [g0, g1, g2]) = (three(params, &mine), three(grads, &mine));
                let ([m0, m1, m2], [v0, v1, v2]) = (three(m, &mine), three(v, &mine));
                let jobs = [
                    vec![(w1, g1, m1, v1)],
                    vec![(w0, g0, m0, v0), (w2, g2, m2, v2)],
                ];
                pair.each(jobs, |_, pieces| {
                    pieces
                        .into_iter()
                        .for_each(|(w, g, m, v)| update(w, g, m, v))
                });
            }
            None => update(params, grads, m, v),
        }
    }

    /// Whether the state fits `num_params` parameters.
    pub fn fits(&self, num_params: usize) -> bool {
        let adam = matches!(self.kind, Kind::Adam { .. });
        self.m.len() == num_params && self.v.len() == if adam { num_params } else { 0 }
    }

    pub fn is_finite(&self) -> bool {
        self.m.iter().chain(&self.v).all(|x| x.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One unclipped update on one thread.
    fn step(opt: &mut Optimizer<f64>, learning_rate: f64, w: &mut [f64], g: &[f64]) {
        opt.step_clipped(None, learning_rate, w, &mut g.to_vec(), None, 0..0);
    }

    #[test]
    fn clip_bounds_values_and_keeps_nan() {
        let mut g = [-7.0f32, -5.0, 0.5, 5.5, f32::NAN];
        clip(&mut g, 5.0);
        assert_eq!(&g[..4], &[-5.0, -5.0, 0.5, 5.0]);
        assert!(g[4].is_nan());
    }

    #[test]
    fn clip_norm_rescales_only_large_gradients() {
        let mut g = [3.0f64, 4.0];
        assert_eq!(clip_norm(&mut g, 10.0), 5.0);
        assert_eq!(g, [3.0, 4.0]);
        clip_norm(&mut g, 1.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn adagrad_matches_the_formula_over_two_steps() {
        let mut opt = Optimizer::new(Kind::Adagrad, 2);
        let mut w = [1.0, -2.0];
        step(&mut opt, 0.1, &mut w, &[0.5, 0.0]);
        assert!((w[0] - (1.0 - 0.1 * 0.5 / (0.25f64 + 1e-8).sqrt())).abs() < 1e-15);
        assert_eq!(w[1], -2.0, "a zero gradient leaves the weight alone");
        let w0 = w[0];
        step(&mut opt, 0.1, &mut w, &[-1.0, 0.0]);
        assert!((w[0] - (w0 + 0.1 / (1.25f64 + 1e-8).sqrt())).abs() < 1e-15);
        assert_eq!(opt.m, vec![1.25, 0.0]);
    }

    #[test]
    fn halves_on_a_pair_update_exactly_as_one_thread() {
        let pair = Pair::new().unwrap();
        let n = 1001;
        let g: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
            .collect();
        for kind in [
            Kind::Adagrad,
            Kind::RmsProp { decay: 0.95 },
            Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
        ] {
            let run = |pair: Option<&Pair>| {
                let (mut opt, mut w) = (Optimizer::new(kind, n), vec![0.5; n]);
                for _ in 0..3 {
                    opt.step_clipped(pair, 0.1, &mut w, &mut g.clone(), Some(5.0), 300..700);
                }
                (w, opt)
            };
            let (one, two) = (run(None), run(Some(&pair)));
            assert_eq!(one, two, "{kind:?}");
            // the clip took effect: no state exceeds three steps of gradients of 5
            assert!(one.1.m.iter().all(|&m| m <= 75.0 + 1e-9), "{kind:?}");
        }
    }

    #[test]
    fn weight_decay_shrinks_matrices_and_the_embedding_not_biases() {
        use crate::model::{Cell, Config};
        let config = Config {
            cell: Cell::Gru,
            vocab: 5,
            hidden: 3,
            layers: 2,
            embedding: 2,
        };
        let mut w = vec![1.0f64; config.num_params()];
        let weights = config.weight_ranges();
        decay_weights(0.5, 0.2, &weights, &mut w);
        let layout = config.layout();
        let shrunk: usize = weights.iter().map(|r| r.len()).sum();
        assert_eq!(w.iter().filter(|&&x| x == 0.9).count(), shrunk);
        assert!(w[layout.embed.clone().unwrap()].iter().all(|&x| x == 0.9));
        assert!(w[layout.why.clone()].iter().all(|&x| x == 0.9));
        assert!(w[layout.by.clone()].iter().all(|&x| x == 1.0));
        for l in &layout.layers {
            assert!(w[l.b.clone()].iter().all(|&x| x == 1.0));
            assert!(
                w[l.extra.clone().unwrap()].iter().all(|&x| x == 1.0),
                "bhn is a bias"
            );
        }
        assert_eq!(
            w.len() - shrunk,
            5 + 2 * (9 + 3),
            "by, and b (3H) and bhn (H) per layer"
        );
    }

    #[test]
    fn rmsprop_matches_char_rnn() {
        let mut opt = Optimizer::new(Kind::RmsProp { decay: 0.95 }, 1);
        let mut w = [1.0f64];
        step(&mut opt, 2e-3, &mut w, &[2.0]);
        let m: f64 = 0.05 * 4.0;
        assert!((w[0] - (1.0 - 2e-3 * 2.0 / (m.sqrt() + 1e-8))).abs() < 1e-15);
    }

    #[test]
    fn adam_matches_pytorch_first_two_steps() {
        // hand-computed from torch.optim.Adam's update rule
        let mut opt = Optimizer::new(
            Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            1,
        );
        let mut w = [0.5f64];
        step(&mut opt, 0.01, &mut w, &[0.2]);
        // step 1: m_hat = g, v_hat = g^2, so w -= lr * g / (|g| + eps)
        assert!((w[0] - (0.5 - 0.01 * 0.2 / (0.2 + 1e-8))).abs() < 1e-12);
        let w1 = w[0];
        step(&mut opt, 0.01, &mut w, &[-0.1]);
        let (m, v) = (0.9 * 0.02 + 0.1 * -0.1, 0.999 * 0.00004 + 0.001 * 0.01);
        let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.999f64.powi(2)));
        assert!((w[0] - (w1 - 0.01 * mh / (vh.sqrt() + 1e-8))).abs() < 1e-12);
    }
}

#[cfg(test)]
mod rsqrt_tests {
    use super::*;

    #[test]
    fn adagrad_clipped_agrees_with_the_formula() {
        // m + eps from 1e-8 to 1e12 (log-spaced), gradients of both signs, some clipped
        let n = 40_001;
        let m0: Vec<f64> = (0..n)
            .map(|i| 10f64.powf(-8.0 + 20.0 * i as f64 / n as f64) - 1e-8)
            .collect();
        let g0: Vec<f64> = (0..n)
            .map(|i| ((i as f64 * 0.618_034).fract() - 0.5) * 14.0)
            .collect();
        let (lr, eps, limit) = (0.1, 1e-8, 5.0);
        let (mut w, mut g, mut m) = (vec![0.0; n], g0.clone(), m0.clone());
        adagrad_clipped(lr, eps, Some(limit), &mut w, &mut g, &mut m);
        let mut worst = 0.0f64;
        for i in 0..n {
            let gi = g0[i].clamp(-limit, limit);
            let mi = gi.mul_add(gi, m0[i]);
            assert_eq!(m[i], mi, "m[{i}]");
            let want = -lr * gi / (mi + eps).sqrt();
            worst = worst.max(((w[i] - want) / want).abs());
        }
        assert!(
            worst <= RSQRT_ERROR,
            "worst relative error {worst:e} = {} eps",
            worst / f64::EPSILON
        );
    }

    #[test]
    fn adagrad_clipped_keeps_the_formula_at_the_edges() {
        // an infinite m leaves w alone, a NaN gradient or m makes w NaN, +0 gradients
        // change nothing: in the first group of eight and in the tail
        let cases = [
            (f64::INFINITY, 1.0),
            (1.0, f64::NAN),
            (f64::NAN, 1.0),
            (4.0, 0.0),
            (0.0, 0.0),
        ];
        for at in [0, 9] {
            for (m0, g0) in cases {
                let (mut w, mut m) = (vec![0.5; 11], vec![1.0; 11]);
                let mut g = vec![0.25; 11];
                (m[at], g[at]) = (m0, g0);
                let (want_m, want_w) = (
                    g0.mul_add(g0, m0),
                    0.5 - 0.1 * g0 / (g0.mul_add(g0, m0) + 1e-8).sqrt(),
                );
                adagrad_clipped(0.1, 1e-8, Some(5.0), &mut w, &mut g, &mut m);
                assert_eq!(m[at].to_bits(), want_m.to_bits(), "m0 {m0} g0 {g0} at {at}");
                assert_eq!(w[at].is_nan(), want_w.is_nan(), "m0 {m0} g0 {g0} at {at}");
                if !want_w.is_nan() {
                    assert_eq!(w[at], want_w, "m0 {m0} g0 {g0} at {at}");
                }
            }
        }
    }
}
