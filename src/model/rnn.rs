//! Vanilla tanh RNN: min-char-rnn's model.
//!
//! ```text
//! h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)     x_t one-hot, so Wxh x_t = Wxh[:, x_t]
//! y_t = Why h_t + by
//! p_t = softmax(y_t)                        loss = sum_t -ln p_t[target_t]
//! ```
//!
//! All parameters live in one flat buffer (llm.c style) in the order Wxh, Whh,
//! Why, bh, by, each row-major with min-char-rnn's shapes. Gradients and
//! optimizer state use the same layout, so clipping and Adagrad are single loops.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, s};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::linalg::{self, Real};

/// Sizes that fix the parameter layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnDims {
    /// V: vocabulary size (one-hot input width and softmax width).
    pub vocab: usize,
    /// H: hidden state size.
    pub hidden: usize,
}

impl RnnDims {
    /// Tensor names and shapes as min-char-rnn (and NumPy export) has them.
    pub fn shapes(self) -> [(&'static str, [usize; 2]); 5] {
        let (v, h) = (self.vocab, self.hidden);
        [("Wxh", [h, v]), ("Whh", [h, h]), ("Why", [v, h]), ("bh", [h, 1]), ("by", [v, 1])]
    }

    pub fn num_params(self) -> usize {
        self.shapes().iter().map(|(_, [r, c])| r * c).sum()
    }

    /// Views of the five tensors inside a buffer laid out as [`RnnDims::shapes`].
    pub fn view<T>(self, buf: &[T]) -> Tensors<'_, T> {
        assert_eq!(buf.len(), self.num_params(), "buffer does not match the RNN layout");
        let (v, h) = (self.vocab, self.hidden);
        let (wxh, rest) = buf.split_at(h * v);
        let (whh, rest) = rest.split_at(h * h);
        let (why, rest) = rest.split_at(v * h);
        let (bh, by) = rest.split_at(h);
        Tensors {
            wxh: ArrayView2::from_shape((h, v), wxh).expect("length checked"),
            whh: ArrayView2::from_shape((h, h), whh).expect("length checked"),
            why: ArrayView2::from_shape((v, h), why).expect("length checked"),
            bh: ArrayView1::from(bh),
            by: ArrayView1::from(by),
        }
    }

    pub fn view_mut<T>(self, buf: &mut [T]) -> TensorsMut<'_, T> {
        assert_eq!(buf.len(), self.num_params(), "buffer does not match the RNN layout");
        let (v, h) = (self.vocab, self.hidden);
        let (wxh, rest) = buf.split_at_mut(h * v);
        let (whh, rest) = rest.split_at_mut(h * h);
        let (why, rest) = rest.split_at_mut(v * h);
        let (bh, by) = rest.split_at_mut(h);
        TensorsMut {
            wxh: ArrayViewMut2::from_shape((h, v), wxh).expect("length checked"),
            whh: ArrayViewMut2::from_shape((h, h), whh).expect("length checked"),
            why: ArrayViewMut2::from_shape((v, h), why).expect("length checked"),
            bh: ArrayViewMut1::from(bh),
            by: ArrayViewMut1::from(by),
        }
    }
}

/// wxh: (H, V), whh: (H, H), why: (V, H), bh: (H), by: (V)
pub struct Tensors<'a, T> {
    pub wxh: ArrayView2<'a, T>,
    pub whh: ArrayView2<'a, T>,
    pub why: ArrayView2<'a, T>,
    pub bh: ArrayView1<'a, T>,
    pub by: ArrayView1<'a, T>,
}

pub struct TensorsMut<'a, T> {
    pub wxh: ArrayViewMut2<'a, T>,
    pub whh: ArrayViewMut2<'a, T>,
    pub why: ArrayViewMut2<'a, T>,
    pub bh: ArrayViewMut1<'a, T>,
    pub by: ArrayViewMut1<'a, T>,
}

/// The model: its sizes and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rnn<T> {
    pub dims: RnnDims,
    /// Flat parameters, laid out as [`RnnDims::shapes`].
    pub params: Vec<T>,
}

/// Activations of one chunk, allocated once for a sequence length and reused.
pub struct Workspace<T> {
    /// (T+1, H): hs[0] = h_prev, hs[t+1] = h_t
    hs: Array2<T>,
    /// (T, V): logits, then probabilities, then dy = p - onehot(target)
    ys: Array2<T>,
    /// (T, H): gradient reaching h_t from y_t
    dh_out: Array2<T>,
    /// (T, H): gradient at the tanh input, (1 - h_t^2) * dh_t
    dh_raw: Array2<T>,
    /// (H): gradient reaching h_{t-1} from step t
    dh_next: Array1<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(dims: RnnDims, seq_length: usize) -> Self {
        let (v, h) = (dims.vocab, dims.hidden);
        Workspace {
            hs: Array2::zeros((seq_length + 1, h)),
            ys: Array2::zeros((seq_length, v)),
            dh_out: Array2::zeros((seq_length, h)),
            dh_raw: Array2::zeros((seq_length, h)),
            dh_next: Array1::zeros(h),
        }
    }

    pub fn seq_length(&self) -> usize {
        self.ys.nrows()
    }
}

impl<T: Real> Rnn<T> {
    /// min-char-rnn's initialisation: Wxh, Whh, Why ~ N(0, 1) * 0.01 drawn in that
    /// order (row-major), biases zero.
    pub fn init<R: Rng>(dims: RnnDims, rng: &mut R) -> Self {
        let mut params = vec![T::zero(); dims.num_params()];
        let matrices = dims.hidden * dims.vocab * 2 + dims.hidden * dims.hidden;
        for w in &mut params[..matrices] {
            *w = T::randn(rng) * T::c(0.01);
        }
        Rnn { dims, params }
    }

    pub fn from_params(dims: RnnDims, params: Vec<T>) -> Self {
        assert_eq!(params.len(), dims.num_params());
        Rnn { dims, params }
    }

    pub fn tensors(&self) -> Tensors<'_, T> {
        self.dims.view(&self.params)
    }

    /// Forward and backward over one chunk (full BPTT within it).
    ///
    /// `h` holds h_prev on entry and the last hidden state on return. `grads`
    /// (same layout as the parameters) is overwritten. Returns the summed loss.
    pub fn forward_backward(
        &self,
        inputs: &[u32],
        targets: &[u32],
        h: &mut [T],
        grads: &mut [T],
        ws: &mut Workspace<T>,
    ) -> f64 {
        let n = inputs.len();
        let hd = self.dims.hidden;
        assert_eq!(n, ws.seq_length(), "workspace was sized for another seq_length");
        assert_eq!(targets.len(), n);
        let p = self.tensors();
        let whh = p.whh.as_slice().expect("row-major");

        // ---- forward ----
        // h_t = tanh(Wxh[:, x_t] + Whh h_{t-1} + bh), one step at a time
        ws.hs.row_mut(0).as_slice_mut().expect("row-major").copy_from_slice(h);
        let hs = ws.hs.as_slice_mut().expect("row-major");
        for (t, &x) in inputs.iter().enumerate() {
            let (done, rest) = hs.split_at_mut((t + 1) * hd);
            let (h_prev, h_t) = (&done[t * hd..], &mut rest[..hd]);
            linalg::matvec(whh, h_prev, h_t);
            let wx = p.wxh.column(x as usize);
            for ((a, &w), &b) in h_t.iter_mut().zip(wx.iter()).zip(p.bh.iter()) {
                *a = (*a + w + b).tanh();
            }
        }
        let hs = ws.hs.as_slice().expect("row-major");
        let h_all = ws.hs.slice(s![1.., ..]); // (T, H): h_1 .. h_T
        // y_t = Why h_t + by for all t at once: ys = H_all Why^T + by
        ws.ys.assign(&p.by.broadcast((n, self.dims.vocab)).expect("by is (V)"));
        linalg::gemm(T::one(), &h_all, &p.why.t(), T::one(), &mut ws.ys.view_mut());
        // p_t = softmax(y_t); loss_t = -ln p_t[target]; then dy_t = p_t - onehot(target)
        let mut loss = 0.0;
        for (mut row, &target) in ws.ys.rows_mut().into_iter().zip(targets) {
            let row = row.as_slice_mut().expect("row-major");
            let target = target as usize;
            let logit = row[target].as_f64();
            loss += linalg::softmax_in_place(row) - logit;
            row[target] = row[target] - T::one();
        }

        // ---- backward ----
        let dy = ws.ys.view(); // (T, V)
        let mut g = self.dims.view_mut(grads);
        // dWhy = dy^T H_all, dby = sum_t dy_t
        linalg::gemm(T::one(), &dy.t(), &h_all, T::zero(), &mut g.why);
        g.by.fill(T::zero());
        for row in dy.rows() {
            g.by.zip_mut_with(&row, |a, &b| *a = *a + b);
        }
        // dh_out_t = Why^T dy_t for all t at once: dh_out = dy Why
        linalg::gemm(T::one(), &dy, &p.why, T::zero(), &mut ws.dh_out.view_mut());
        // dh_raw_t = (1 - h_t^2) * (dh_out_t + dh_next);  dh_next = Whh^T dh_raw_t
        let dh_next = ws.dh_next.as_slice_mut().expect("contiguous");
        dh_next.fill(T::zero());
        for t in (0..n).rev() {
            let h_t = &hs[(t + 1) * hd..(t + 2) * hd];
            let dh_out = &ws.dh_out.as_slice().expect("row-major")[t * hd..(t + 1) * hd];
            let mut dh_raw = ws.dh_raw.row_mut(t);
            let dh_raw = dh_raw.as_slice_mut().expect("row-major");
            for i in 0..hd {
                dh_raw[i] = (T::one() - h_t[i] * h_t[i]) * (dh_out[i] + dh_next[i]);
            }
            if t > 0 {
                linalg::matvec_t(whh, dh_raw, dh_next);
            }
        }
        // dWhh = dh_raw^T H_prev (H_prev = h_0 .. h_{T-1}), dbh = sum_t dh_raw_t,
        // dWxh[:, x_t] += dh_raw_t
        let h_prev_all = ws.hs.slice(s![..n, ..]);
        linalg::gemm(T::one(), &ws.dh_raw.t(), &h_prev_all, T::zero(), &mut g.whh);
        g.bh.fill(T::zero());
        g.wxh.fill(T::zero());
        for (row, &x) in ws.dh_raw.rows().into_iter().zip(inputs) {
            g.bh.zip_mut_with(&row, |a, &b| *a = *a + b);
            g.wxh.column_mut(x as usize).zip_mut_with(&row, |a, &b| *a = *a + b);
        }

        h.copy_from_slice(ws.hs.row(n).as_slice().expect("row-major"));
        loss
    }

    /// One inference step: h <- tanh(Wxh[:, x] + Whh h + bh), then
    /// logits <- Why h + by. `scratch` has length H.
    pub fn step(&self, x: u32, h: &mut [T], logits: &mut [T], scratch: &mut [T]) {
        let p = self.tensors();
        linalg::matvec(p.whh.as_slice().expect("row-major"), h, scratch);
        let wx = p.wxh.column(x as usize);
        for (((hi, &a), &w), &b) in h.iter_mut().zip(scratch.iter()).zip(wx).zip(p.bh) {
            *hi = (a + w + b).tanh();
        }
        linalg::matvec(p.why.as_slice().expect("row-major"), h, logits);
        for (y, &b) in logits.iter_mut().zip(p.by) {
            *y = *y + b;
        }
    }

    /// The loss of a chunk without gradients (for checks and evaluation).
    pub fn loss(&self, inputs: &[u32], targets: &[u32], h: &mut [T]) -> f64 {
        let mut logits = vec![T::zero(); self.dims.vocab];
        let mut scratch = vec![T::zero(); self.dims.hidden];
        let mut loss = 0.0;
        for (&x, &target) in inputs.iter().zip(targets) {
            self.step(x, h, &mut logits, &mut scratch);
            let logit = logits[target as usize].as_f64();
            loss += linalg::softmax_in_place(&mut logits) - logit;
        }
        loss
    }
}
