//! The weights laid out for one character at a time: what `Sampler` prepares
//! once (`Workspace::prepare_for_sampling`) and then feeds thousands of
//! characters through. Each matrix takes the layout that multiplies one vector
//! fastest: matrices up to [`TRANSPOSE_BYTES`] are transposed into blocks for
//! the register-blocked kernel, larger ones are packed in strips when their
//! width allows, else left as they are for row dot products (docs/performance.md
//! has the measurements behind the threshold).

use super::{Layout, Model};
use crate::linalg::{self, Real};

/// A model's weights laid out for single-character steps.
pub(crate) struct SamplingLayout<T> {
    /// (V, GH): the first layer's input projection for each character,
    /// Wx[:, x] (one-hot) or embed[x] Wx^T
    pub(crate) table: Vec<T>,
    /// Per layer above the first: Wx^T (H, GH)
    pub(crate) wx_t: Vec<Option<Packed<T>>>,
    /// Per layer: Wh^T (H, GH)
    pub(crate) wh_t: Vec<Option<Packed<T>>>,
    /// (H, V): Why^T
    pub(crate) why_t: Option<Packed<T>>,
}

/// M^T of a row-major M, for y = x M^T one vector at a time.
pub(crate) enum Packed<T> {
    /// M^T in blocks, for `block_vecmat`
    Blocks(Vec<T>),
    /// M^T in 16-column strips, for `strip_vecmat`
    Strips(Vec<T>),
}

/// Largest matrix the sampler transposes into blocks; larger ones go in strips.
const TRANSPOSE_BYTES: usize = 1 << 19;

impl<T: Real> Packed<T> {
    /// M (rows, cols) row-major -> the layout that multiplies it fastest, if any.
    fn of(m: &[T], rows: usize, cols: usize) -> Option<Packed<T>> {
        let mut t = vec![T::zero(); rows * cols];
        if rows * cols * std::mem::size_of::<T>() <= TRANSPOSE_BYTES {
            linalg::pack_blocks_of_transpose(m, rows, cols, &mut t);
            Some(Packed::Blocks(t))
        } else if rows.is_multiple_of(linalg::TILE_COLS) {
            linalg::pack_strips_of_transpose(m, rows, cols, &mut t);
            Some(Packed::Strips(t))
        } else {
            None
        }
    }

    /// y = x M^T
    pub(crate) fn apply(&self, x: &[T], y: &mut [T]) {
        match self {
            Packed::Blocks(t) => linalg::block_vecmat(x, t, y, false),
            Packed::Strips(t) => linalg::strip_vecmat(x, t, y, 1, false),
        }
    }
}

impl<T: Real> SamplingLayout<T> {
    pub(crate) fn new(model: &Model<T>, layout: &Layout) -> Self {
        let c = model.config;
        let (p, gh) = (&model.params, c.cell.gates() * c.hidden);
        let l0 = &layout.layers[0];
        let mut table = vec![T::zero(); c.vocab * gh];
        match &layout.embed {
            Some(embed) => {
                let (embed, wx) = (&p[embed.clone()], &p[l0.wx.clone()]);
                linalg::a_bt(embed, wx, &mut table, c.vocab, c.embedding, gh, T::zero());
            }
            None => linalg::transpose(&p[l0.wx.clone()], gh, c.vocab, &mut table),
        }
        let layers = &layout.layers;
        SamplingLayout {
            table,
            wx_t: layers
                .iter()
                .skip(1)
                .map(|lp| Packed::of(&p[lp.wx.clone()], gh, c.hidden))
                .collect(),
            wh_t: layers
                .iter()
                .map(|lp| Packed::of(&p[lp.wh.clone()], gh, c.hidden))
                .collect(),
            why_t: Packed::of(&p[layout.why.clone()], c.vocab, c.hidden),
        }
    }
}
