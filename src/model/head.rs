//! The output layer one step at a time, for one stream without dropout:
//!
//! ```text
//! y_t = h_t Why^T + by,   loss_t = -ln softmax(y_t)[target_t]
//! dy_t = (softmax(y_t) - onehot(target_t)) * scale,   dtop_t = dy_t Why
//! ```
//! over Why laid out in blocks (both ways), which stay in cache from step to
//! step. With the pair and no split recurrence it runs on the helper beside the
//! recurrence, each step as soon as its h_t is written (the top layer's states
//! are then shared through [`States::Beside`]), and dWhy runs beside the backward
//! pass; when the pair splits the recurrence it runs after it, half the steps
//! on each thread; alone, after it on this thread. Every path computes the same
//! values: [`block_matmat`](linalg::block_matmat) gives each row the bits of
//! [`block_vecmat`](linalg::block_vecmat) however rows are grouped.

use super::softmax::{dwhy_rows, softmax_loss};
use super::workspace::{HeadLayouts, Workspace};
use super::{Model, State};
use crate::linalg::{self, Real};
use crate::parallel::{self, Pair, SharedMut, StepCounter};

/// The rows h_0 .. h_T of a layer's states as the recurrence writes them: its
/// own buffer, or (the top layer, when the output layer runs beside) a buffer
/// the output layer reads from the other thread, row t + 1 once step t is
/// published.
pub(crate) enum States<'a, T> {
    Own(&'a mut [T]),
    Beside {
        hs: SharedMut<'a, T>,
        published: &'a StepCounter,
    },
}

impl<T: Real> States<'_, T> {
    /// Row `r` (`width` values), to write before the first step.
    pub(crate) fn first_mut(&mut self, width: usize) -> &mut [T] {
        match self {
            States::Own(hs) => &mut hs[..width],
            // SAFETY: row 0 is never read by the output layer, which reads rows 1..
            States::Beside { hs, .. } => unsafe { hs.get_mut(0, width) },
        }
    }

    /// h_{t-1} and h_t of step t: rows t and t + 1, `width` values each.
    pub(crate) fn step(&mut self, t: usize, width: usize) -> (&[T], &mut [T]) {
        match self {
            States::Own(hs) => {
                let (done, next) = hs.split_at_mut((t + 1) * width);
                (&done[t * width..], &mut next[..width])
            }
            // SAFETY: only this thread writes the states; the output layer reads
            // rows 1..=n once steps 0..n are published, and step t (row t + 1) is
            // published only after this borrow ends, so nothing reads row t + 1 now
            States::Beside { hs, .. } => unsafe {
                (hs.get(t * width, width), hs.get_mut((t + 1) * width, width))
            },
        }
    }

    /// All the states, for a split recurrence (which never runs beside the
    /// output layer).
    pub(crate) fn own(&mut self) -> &mut [T] {
        match self {
            States::Own(hs) => hs,
            States::Beside { .. } => {
                unreachable!("a split recurrence never runs beside the output layer")
            }
        }
    }

    /// Says that `steps` steps are written (for the output layer beside).
    pub(crate) fn publish(&self, steps: usize) {
        if let States::Beside { published, .. } = self {
            published.publish(steps);
        }
    }

    /// Row `r` (`width` values), after the last step.
    pub(crate) fn row(&self, r: usize, width: usize) -> &[T] {
        self.rows(r, 1, width)
    }

    /// Rows `first..first + n` (`width` values each), after the last step.
    pub(crate) fn rows(&self, first: usize, n: usize, width: usize) -> &[T] {
        match self {
            States::Own(hs) => &hs[first * width..(first + n) * width],
            // SAFETY: the recurrence is over; nothing writes the states any more
            States::Beside { hs, .. } => unsafe { hs.get(first * width, n * width) },
        }
    }
}

/// The buffers the output layer writes, moved out of the workspace for the pass.
struct Outputs<T> {
    /// (T, V): logits, then dY
    ys: Vec<T>,
    /// (T): -ln p[target] per step
    losses: Vec<f64>,
    /// (T, H): dtop = dY Why
    dtop: Vec<T>,
    layouts: HeadLayouts<T>,
}

/// The two jobs of a pass whose output layer runs beside the recurrence.
enum Beside<'a, T> {
    Recurrence(&'a mut Workspace<T>, &'a mut State<T>),
    Output(&'a mut Outputs<T>),
}

/// The two jobs of its backward pass.
enum BesideBack<'a, T> {
    Layers(&'a mut Workspace<T>, &'a mut [T]),
    /// dWhy and dby
    Dwhy(&'a mut [T], &'a mut [T]),
}

impl<T: Real> Model<T> {
    /// `forward_loss` for one stream without dropout, with the output layer
    /// step by step (see the module's note for where it runs).
    pub(crate) fn forward_loss_by_step(
        &self,
        inputs: &[u32],
        targets: &[u32],
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        scale: T,
    ) -> f64 {
        let pair = ws.pair.clone();
        let beside = pair.as_deref().filter(|_| !ws.split);
        let (rows, top) = (inputs.len(), self.config.layers - 1);
        let output = (
            &self.params[ws.layout.why.clone()],
            &self.params[ws.layout.by.clone()],
        );
        let mut out = Outputs {
            ys: std::mem::take(&mut ws.ys),
            losses: std::mem::take(&mut ws.losses),
            dtop: std::mem::take(&mut ws.dcur),
            layouts: std::mem::replace(
                &mut ws.head,
                HeadLayouts {
                    why_t_blocks: Vec::new(),
                    why_blocks: Vec::new(),
                },
            ),
        };
        match beside {
            Some(pair) => {
                // the top layer's states leave the workspace for the pass: the
                // recurrence writes them and the output layer reads them at once
                let mut hs = std::mem::take(&mut ws.layers[top].hs);
                let (shared, published) = (SharedMut::new(&mut hs), StepCounter::new());
                let jobs = [
                    Beside::Recurrence(&mut *ws, state),
                    Beside::Output(&mut out),
                ];
                pair.each(jobs, |_, job| match job {
                    Beside::Recurrence(ws, state) => {
                        let states = States::Beside {
                            hs: shared,
                            published: &published,
                        };
                        self.forward_on(inputs, state, ws, None, Some(states));
                    }
                    Beside::Output(out) => {
                        self.output_by_step(targets, shared, Some(&published), scale, output, out)
                    }
                });
                ws.layers[top].hs = hs;
            }
            None => {
                // after the recurrence; a pair that splits its steps takes half the steps each
                self.forward_on(inputs, state, ws, pair.as_deref(), None);
                let hs = &ws.layers[top].hs;
                self.output_in_halves(targets, hs, scale, output, &mut out, pair.as_deref());
            }
        }
        let loss = out.losses[..rows].iter().sum();
        (ws.ys, ws.losses, ws.dcur, ws.head) = (out.ys, out.losses, out.dtop, out.layouts);
        loss
    }

    /// The output layer of one stream, one step at a time: for each target t, once
    /// h_t (row t + 1 of the top layer's states) is written (`published` above t,
    /// when given), y_t, the loss, dy_t in place of y_t, and dtop_t. `output` is
    /// (Why, by).
    fn output_by_step(
        &self,
        targets: &[u32],
        hs: SharedMut<'_, T>,
        published: Option<&StepCounter>,
        scale: T,
        (why, by): (&[T], &[T]),
        out: &mut Outputs<T>,
    ) {
        let (v, h) = (self.config.vocab, self.config.hidden);
        // laid out here, so that Why stays in this thread's cache
        linalg::pack_blocks_of_transpose(why, v, h, &mut out.layouts.why_t_blocks);
        linalg::pack_blocks_of(why, v, h, 0..h, &mut out.layouts.why_blocks);
        let layouts = (
            &out.layouts.why_t_blocks[..],
            &out.layouts.why_blocks[..],
            by,
        );
        // the steps written so far, all at once (a load of Why then serves several)
        let (mut t, steps) = (0, targets.len());
        while t < steps {
            let ready = published.map_or(steps, |p| p.wait_for(t + 1).min(steps));
            // SAFETY: rows t + 1 ..= ready are written and published (or the
            // recurrence is over), and nothing writes them until this pass is over
            let rows = unsafe { hs.get((t + 1) * h, (ready - t) * h) };
            let part = (
                &mut out.ys[t * v..ready * v],
                &mut out.losses[t..ready],
                &mut out.dtop[t * h..ready * h],
            );
            steps_of(rows, &targets[t..ready], scale, layouts, part);
            t = ready;
        }
    }

    /// The output layer step by step once the recurrence is over (`hs`: the top
    /// layer's states), the steps in two halves on `pair` (each thread lays out
    /// one of Why's two layouts first).
    fn output_in_halves(
        &self,
        targets: &[u32],
        hs: &[T],
        scale: T,
        (why, by): (&[T], &[T]),
        out: &mut Outputs<T>,
        pair: Option<&Pair>,
    ) {
        let (v, h, steps) = (self.config.vocab, self.config.hidden, targets.len());
        let Some(pair) = pair.filter(|_| steps >= 2) else {
            let lay = &mut out.layouts;
            linalg::pack_blocks_of_transpose(why, v, h, &mut lay.why_t_blocks);
            linalg::pack_blocks_of(why, v, h, 0..h, &mut lay.why_blocks);
            let layouts = (&lay.why_t_blocks[..], &lay.why_blocks[..], by);
            let all = (
                &mut out.ys[..steps * v],
                &mut out.losses[..steps],
                &mut out.dtop[..steps * h],
            );
            return steps_of(&hs[h..(steps + 1) * h], targets, scale, layouts, all);
        };
        // the transpose (the slower) on the helper: this thread has more to do
        // after a split recurrence
        let lay = &mut out.layouts;
        pair.each(
            [&mut lay.why_blocks, &mut lay.why_t_blocks],
            |i, buffer| match i {
                0 => linalg::pack_blocks_of(why, v, h, 0..h, buffer),
                _ => linalg::pack_blocks_of_transpose(why, v, h, buffer),
            },
        );
        let mid = steps / 2;
        let (ys0, ys1) = out.ys[..steps * v].split_at_mut(mid * v);
        let (losses0, losses1) = out.losses[..steps].split_at_mut(mid);
        let (dtop0, dtop1) = out.dtop[..steps * h].split_at_mut(mid * h);
        let layouts = (&lay.why_t_blocks[..], &lay.why_blocks[..], by);
        let halves = [
            (0..mid, ys0, losses0, dtop0),
            (mid..steps, ys1, losses1, dtop1),
        ];
        pair.each(halves, |_, (rows, ys, losses, dtop)| {
            let states = &hs[(rows.start + 1) * h..(rows.end + 1) * h];
            steps_of(states, &targets[rows], scale, layouts, (ys, losses, dtop));
        });
    }

    /// `backward` after an output layer step by step: dtop is there, dWhy and dby
    /// are left. With a split recurrence both threads take half of dWhy's rows,
    /// then go back through the layers together; otherwise dWhy runs on the
    /// helper (when there is one) while this thread goes back through the layers.
    pub(crate) fn backward_after_output_by_step(
        &self,
        inputs: &[u32],
        grads: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        let (v, rows, top) = (self.config.vocab, inputs.len(), self.config.layers - 1);
        let h = self.config.hidden;
        let (why, by) = (ws.layout.why.clone(), ws.layout.by.clone());
        let pair = ws.pair.clone();
        let pair = pair.as_deref();
        if ws.split {
            let [gwhy, gby] = grads.get_disjoint_mut([why, by]).expect("disjoint tensors");
            let (hs, dy) = (&ws.layers[top].hs[h..(rows + 1) * h], &ws.ys[..rows * v]);
            match parallel::halves(pair, v) {
                Some((pair, mid)) => {
                    let ([w0, w1], (b0, b1)) =
                        (parallel::split_rows(gwhy, h, mid), gby.split_at_mut(mid));
                    pair.each([(0..mid, w0, b0), (mid..v, w1, b1)], |_, (r, gwhy, gby)| {
                        dwhy_rows(r, (dy, hs), (gwhy, gby))
                    });
                }
                None => dwhy_rows(0..v, (dy, hs), (gwhy, gby)),
            }
            return self.backward_layers(inputs, grads, ws, pair, None);
        }
        let (grads, rest) = grads.split_at_mut(why.start);
        let (gwhy, gby) = rest.split_at_mut(why.len());
        // the top layer's states leave the workspace: both jobs read them
        let (ys, hs) = (
            std::mem::take(&mut ws.ys),
            std::mem::take(&mut ws.layers[top].hs),
        );
        let jobs = [
            BesideBack::Layers(&mut *ws, grads),
            BesideBack::Dwhy(gwhy, gby),
        ];
        parallel::each(pair, jobs, |_, job| match job {
            BesideBack::Layers(ws, grads) => {
                self.backward_layers(inputs, grads, ws, None, Some(&hs))
            }
            BesideBack::Dwhy(gwhy, gby) => {
                dwhy_rows(0..v, (&ys[..rows * v], &hs[h..(rows + 1) * h]), (gwhy, gby))
            }
        });
        (ws.ys, ws.layers[top].hs) = (ys, hs);
    }
}

/// The output layer for the rows h (several steps of one stream): ys = h Why^T +
/// by, the loss of each row, dY in place of ys, and dtop = dY Why. `layouts` is
/// (Why^T in blocks, Why in blocks, by) and `out` is (ys, losses, dtop) for
/// these rows.
fn steps_of<T: Real>(
    h: &[T],
    targets: &[u32],
    scale: T,
    (why_t_blocks, why_blocks, by): (&[T], &[T], &[T]),
    (ys, losses, dtop): (&mut [T], &mut [f64], &mut [T]),
) {
    let (v, hidden) = (by.len(), dtop.len() / targets.len());
    linalg::block_matmat(h, why_t_blocks, ys, v);
    linalg::add_row(ys, by);
    for ((y, &target), loss) in ys.chunks_exact_mut(v).zip(targets).zip(losses) {
        *loss = softmax_loss(y, target as usize, scale);
    }
    linalg::block_matmat(ys, why_blocks, dtop, hidden);
}
