//! The oracle: the whole network in plain f64, one row and one step at a time,
//! written straight from the equations (llm.c's `test_gpt2.c` pattern). No SIMD,
//! no packed layouts, no threads and no shared code with the library's passes
//! beyond the parameter layout ([`Config::layout`]), so that every fast path can
//! be checked against it (tests/it/oracle.rs).
//!
//! ```text
//! x_t       one-hot(id) | embed[id] (layer 0),  dropout(h^{l-1}_t) above
//! rnn       h = tanh(Wx x + b + Wh h_prev)
//! lstm      [i f g o] = Wx x + b + Wh h_prev;  i f o = sigmoid, g = tanh
//!           c = f c_prev + i g,  h = o tanh(c)
//! gru       r = sigmoid(..r),  z = sigmoid(..z)
//!           n = tanh(Wx_n x + b_n + r (Wh_n h_prev + bhn)),  h = (1 - z) n + z h_prev
//! output    y = Why dropout(h^{L-1}) + by,  loss = sum_rows -ln softmax(y)[target]
//! ```
//! Rows are time-major: row t*B + s is step t of stream s. Gradients are of
//! `scale` times the summed loss, truncated at the chunk's start, as the library's.

use charrnn::model::{Cell, Config};

/// What one pass gives.
pub struct Pass {
    /// sum over rows of -ln p[target]
    pub loss: f64,
    /// (T*B, V) logits
    pub logits: Vec<f64>,
    /// d(scale * loss)/d(params), in the flat layout
    pub grads: Vec<f64>,
    /// per layer (B, H): h and (LSTM) c after the last step
    pub h: Vec<Vec<f64>>,
    pub c: Vec<Vec<f64>>,
}

/// The chunk a pass runs over.
pub struct Chunk<'a> {
    pub inputs: &'a [u32],
    pub targets: &'a [u32],
    /// B: streams
    pub batch: usize,
    /// per layer (B, H): the carried-in state (c empty but for the LSTM)
    pub h0: &'a [Vec<f64>],
    pub c0: &'a [Vec<f64>],
    /// per layer (T*B, H): values 0 or 1/(1-p); empty = no dropout
    pub masks: &'a [Vec<f64>],
    pub scale: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y = M x for row-major M (rows, x.len()).
fn mat_vec(m: &[f64], x: &[f64]) -> Vec<f64> {
    m.chunks(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

/// x += M^T d for row-major M (d.len(), x.len()).
fn add_mat_t_vec(m: &[f64], d: &[f64], x: &mut [f64]) {
    for (row, &dk) in m.chunks(x.len()).zip(d) {
        x.iter_mut().zip(row).for_each(|(xi, &w)| *xi += w * dk);
    }
}

/// G += d x^T for row-major G (d.len(), x.len()).
fn add_outer(g: &mut [f64], d: &[f64], x: &[f64]) {
    for (row, &dk) in g.chunks_mut(x.len()).zip(d) {
        row.iter_mut().zip(x).for_each(|(gi, &xi)| *gi += dk * xi);
    }
}

/// One layer's values at one row, kept for the backward pass.
#[derive(Clone, Default)]
struct Step {
    x: Vec<f64>,
    h_prev: Vec<f64>,
    c_prev: Vec<f64>,
    /// activated gates: rnn [h], lstm [i f g o], gru [r z n]
    gates: Vec<f64>,
    /// lstm: c; gru: Wh_n h_prev + bhn
    extra: Vec<f64>,
    h: Vec<f64>,
}

pub fn pass(config: &Config, params: &[f64], chunk: &Chunk) -> Pass {
    let Config {
        cell,
        vocab: v,
        hidden,
        layers,
        embedding: e,
    } = *config;
    let layout = config.layout();
    let p = |r: &std::ops::Range<usize>| &params[r.clone()];
    let (b, rows) = (chunk.batch, chunk.inputs.len());
    let mut steps: Vec<Vec<Step>> = vec![vec![Step::default(); rows]; layers];
    let (mut h_end, mut c_end) = (chunk.h0.to_vec(), chunk.c0.to_vec());
    // the layers' outputs after dropout, (T*B) rows of H
    let mut below: Vec<Vec<f64>> = Vec::new();
    for l in 0..layers {
        let lp = &layout.layers[l];
        let (wx, wh, bias) = (p(&lp.wx), p(&lp.wh), p(&lp.b));
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let (t, s) = (r / b, r % b);
            let x = if l > 0 {
                below[r].clone()
            } else if e > 0 {
                let id = chunk.inputs[r] as usize;
                p(layout.embed.as_ref().unwrap())[id * e..(id + 1) * e].to_vec()
            } else {
                let mut x = vec![0.0; v];
                x[chunk.inputs[r] as usize] = 1.0;
                x
            };
            let (h_prev, c_prev) = if t == 0 {
                let c = chunk
                    .c0
                    .get(l)
                    .map_or(Vec::new(), |c| c[s * hidden..(s + 1) * hidden].to_vec());
                (chunk.h0[l][s * hidden..(s + 1) * hidden].to_vec(), c)
            } else {
                let prev = &steps[l][r - b];
                let c = if cell == Cell::Lstm {
                    prev.extra.clone()
                } else {
                    Vec::new()
                };
                (prev.h.clone(), c)
            };
            let px: Vec<f64> = mat_vec(wx, &x)
                .iter()
                .zip(bias)
                .map(|(a, c)| a + c)
                .collect();
            let ph = mat_vec(wh, &h_prev);
            let pre = |k: usize| px[k] + ph[k];
            let (gates, extra, h) = match cell {
                Cell::Rnn => {
                    let h: Vec<f64> = (0..hidden).map(|j| pre(j).tanh()).collect();
                    (h.clone(), Vec::new(), h)
                }
                Cell::Lstm => {
                    let gates: Vec<f64> = (0..4 * hidden)
                        .map(|k| {
                            if k / hidden == 2 {
                                pre(k).tanh()
                            } else {
                                sigmoid(pre(k))
                            }
                        })
                        .collect();
                    let (i, f, g, o) = (
                        &gates[..hidden],
                        &gates[hidden..2 * hidden],
                        &gates[2 * hidden..3 * hidden],
                        &gates[3 * hidden..],
                    );
                    let c: Vec<f64> = (0..hidden)
                        .map(|j| f[j] * c_prev[j] + i[j] * g[j])
                        .collect();
                    let h = (0..hidden).map(|j| o[j] * c[j].tanh()).collect();
                    (gates, c, h)
                }
                Cell::Gru => {
                    let bhn = p(lp.extra.as_ref().unwrap());
                    let r_: Vec<f64> = (0..hidden).map(|j| sigmoid(pre(j))).collect();
                    let z: Vec<f64> = (0..hidden).map(|j| sigmoid(pre(hidden + j))).collect();
                    let hpn: Vec<f64> = (0..hidden).map(|j| ph[2 * hidden + j] + bhn[j]).collect();
                    let n: Vec<f64> = (0..hidden)
                        .map(|j| (px[2 * hidden + j] + r_[j] * hpn[j]).tanh())
                        .collect();
                    let h = (0..hidden)
                        .map(|j| (1.0 - z[j]) * n[j] + z[j] * h_prev[j])
                        .collect();
                    ([r_, z, n].concat(), hpn, h)
                }
            };
            let mut o: Vec<f64> = h.clone();
            if let Some(mask) = chunk.masks.get(l) {
                o.iter_mut()
                    .zip(&mask[r * hidden..(r + 1) * hidden])
                    .for_each(|(a, m)| *a *= m);
            }
            if t == rows / b - 1 {
                h_end[l][s * hidden..(s + 1) * hidden].copy_from_slice(&h);
                if cell == Cell::Lstm {
                    c_end[l][s * hidden..(s + 1) * hidden].copy_from_slice(&extra);
                }
            }
            out.push(o);
            steps[l][r] = Step {
                x,
                h_prev,
                c_prev,
                gates,
                extra,
                h,
            };
        }
        below = out;
    }

    // output layer: y = Why top + by, p = softmax(y), dy = (p - onehot) * scale
    let (why, by) = (p(&layout.why), p(&layout.by));
    let mut grads = vec![0.0; params.len()];
    let (mut loss, mut logits) = (0.0, Vec::with_capacity(rows * v));
    let mut dout: Vec<Vec<f64>> = Vec::with_capacity(rows);
    for (r, top) in below.iter().enumerate() {
        let y: Vec<f64> = mat_vec(why, top)
            .iter()
            .zip(by)
            .map(|(a, c)| a + c)
            .collect();
        let max = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = y.iter().map(|a| (a - max).exp()).sum();
        let target = chunk.targets[r] as usize;
        loss += max + sum.ln() - y[target];
        let mut dy: Vec<f64> = y.iter().map(|a| (a - max).exp() / sum).collect();
        dy[target] -= 1.0;
        dy.iter_mut().for_each(|d| *d *= chunk.scale);
        add_outer(&mut grads[layout.why.clone()], &dy, top);
        grads[layout.by.clone()]
            .iter_mut()
            .zip(&dy)
            .for_each(|(g, d)| *g += d);
        let mut dtop = vec![0.0; hidden];
        add_mat_t_vec(why, &dy, &mut dtop);
        dout.push(dtop);
        logits.extend(y);
    }

    for l in (0..layers).rev() {
        let lp = &layout.layers[l];
        let (wx, wh) = (p(&lp.wx), p(&lp.wh));
        let input = config.input_size(l);
        let mut dx = vec![vec![0.0; input]; rows];
        let (mut dh_next, mut dc_next) = (vec![vec![0.0; hidden]; b], vec![vec![0.0; hidden]; b]);
        for r in (0..rows).rev() {
            let (s, st) = (r % b, &steps[l][r]);
            let mut dh = dout[r].clone();
            if let Some(mask) = chunk.masks.get(l) {
                dh.iter_mut()
                    .zip(&mask[r * hidden..(r + 1) * hidden])
                    .for_each(|(d, m)| *d *= m);
            }
            dh.iter_mut().zip(&dh_next[s]).for_each(|(d, n)| *d += n);
            // gradients at the input-side pre-activations (dpx), at Wh h_prev (dph),
            // and at h_prev other than through Wh (direct)
            let (dpx, dph, direct) = match cell {
                Cell::Rnn => {
                    let d: Vec<f64> = (0..hidden)
                        .map(|j| (1.0 - st.h[j] * st.h[j]) * dh[j])
                        .collect();
                    (d.clone(), d, vec![0.0; hidden])
                }
                Cell::Lstm => {
                    let g_ = &st.gates;
                    let (i, f, g, o) = (
                        &g_[..hidden],
                        &g_[hidden..2 * hidden],
                        &g_[2 * hidden..3 * hidden],
                        &g_[3 * hidden..],
                    );
                    let mut d = vec![0.0; 4 * hidden];
                    for j in 0..hidden {
                        let tc = st.extra[j].tanh();
                        let dc = dc_next[s][j] + dh[j] * o[j] * (1.0 - tc * tc);
                        d[j] = dc * g[j] * i[j] * (1.0 - i[j]);
                        d[hidden + j] = dc * st.c_prev[j] * f[j] * (1.0 - f[j]);
                        d[2 * hidden + j] = dc * i[j] * (1.0 - g[j] * g[j]);
                        d[3 * hidden + j] = dh[j] * tc * o[j] * (1.0 - o[j]);
                        dc_next[s][j] = dc * f[j];
                    }
                    (d.clone(), d, vec![0.0; hidden])
                }
                Cell::Gru => {
                    let (r_, z, n) = (
                        &st.gates[..hidden],
                        &st.gates[hidden..2 * hidden],
                        &st.gates[2 * hidden..],
                    );
                    let (mut dpx, mut dph, mut direct) = (
                        vec![0.0; 3 * hidden],
                        vec![0.0; 3 * hidden],
                        vec![0.0; hidden],
                    );
                    for j in 0..hidden {
                        let dn = dh[j] * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                        let dz = dh[j] * (st.h_prev[j] - n[j]) * z[j] * (1.0 - z[j]);
                        let dr = dn * st.extra[j] * r_[j] * (1.0 - r_[j]);
                        direct[j] = dh[j] * z[j];
                        (dpx[j], dpx[hidden + j], dpx[2 * hidden + j]) = (dr, dz, dn);
                        (dph[j], dph[hidden + j], dph[2 * hidden + j]) = (dr, dz, dn * r_[j]);
                    }
                    let gbhn = &mut grads[lp.extra.clone().unwrap()];
                    gbhn.iter_mut()
                        .zip(&dph[2 * hidden..])
                        .for_each(|(g, d)| *g += d);
                    (dpx, dph, direct)
                }
            };
            grads[lp.b.clone()]
                .iter_mut()
                .zip(&dpx)
                .for_each(|(g, d)| *g += d);
            add_outer(&mut grads[lp.wx.clone()], &dpx, &st.x);
            add_outer(&mut grads[lp.wh.clone()], &dph, &st.h_prev);
            add_mat_t_vec(wx, &dpx, &mut dx[r]);
            dh_next[s] = direct;
            add_mat_t_vec(wh, &dph, &mut dh_next[s]);
        }
        if l > 0 {
            dout = dx;
        } else if e > 0 {
            let ge = &mut grads[layout.embed.clone().unwrap()];
            for (r, d) in dx.iter().enumerate() {
                let id = chunk.inputs[r] as usize;
                ge[id * e..(id + 1) * e]
                    .iter_mut()
                    .zip(d)
                    .for_each(|(g, d)| *g += d);
            }
        }
    }
    Pass {
        loss,
        logits,
        grads,
        h: h_end,
        c: c_end,
    }
}
