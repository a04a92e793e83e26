//! What a recurrent cell is to the network ([`CellKind`]), one step of it forward
//! ([`Forward`]) and back ([`Backward`]), and the registry of cells ([`Cell`]).
//!
//! The network computes every product with a weight matrix (the input side
//! `xp` = Wx x_t + b for all steps at once, the hidden side `hp` = Wh h_{t-1} one
//! step at a time) and hands a cell the results; the cell does the elementwise
//! rest. Adding a cell is one file here implementing [`CellKind`] and one line
//! in the `cells!` list below (see docs/ARCHITECTURE.md).

use serde::{Deserialize, Serialize};

use super::Init;
use crate::linalg::Real;

/// A recurrent cell: its shape, its tensors and one step of it. Slices hold one
/// row per stream (B rows); G is [`CellKind::GATES`] and H the hidden size.
pub trait CellKind {
    /// The name on the command line and in exports ("lstm").
    const NAME: &'static str;
    /// How `Config::describe` calls it ("LSTM").
    const TITLE: &'static str;
    /// How an export explains the tensors' rows (gate order, equation).
    const GATE_ORDER: &'static str;
    /// G: pre-activation blocks per hidden unit (the rows of Wx, Wh and b are G*H).
    const GATES: usize;
    /// Values cached per step, stream and hidden unit for the backward pass.
    const CACHE: usize;
    /// Whether the cell carries a cell state c beside h (the LSTM).
    const CELL_STATE: bool = false;
    /// Whether the gradient at the hidden-side pre-activations (dhp) differs from
    /// the input side's (dxp): the GRU's reset gate scales Wh_n h_{t-1}.
    const OWN_HIDDEN_GRADIENT: bool = false;
    /// The name of an extra per-layer bias of H values after b (the GRU's bhn,
    /// inside r * (Wh_n h + bhn)), if the cell has one.
    const EXTRA_BIAS: Option<&'static str> = None;
    /// The names of Wx, Wh and b (min-char-rnn's Wxh, Whh and bh for the tanh RNN).
    const NAMES: [&'static str; 3] = ["Wx", "Wh", "b"];
    /// One step of the cell for one stream in JavaScript, for the page `export
    /// --format html` writes: the body of `function (px, ph, hPrev, c, extra, H)`
    /// with px = Wx x + b and ph = Wh h_{t-1} (Float64Array of G*H), hPrev (H),
    /// c the cell state (H, updated in place; unused without one) and extra the
    /// extra bias (H, or null). It returns h_t (a Float64Array of H). `sigmoid`
    /// is in scope. tests/it/play.rs holds it against [`CellKind::forward`].
    const JS: &'static str;

    /// How weights and biases start for H hidden units.
    fn init(hidden: usize) -> (Init, Init);

    /// h_t (and c_t, and the cache) from the pre-activations of step t.
    fn forward<T: Real>(hidden: usize, step: Forward<'_, T>);

    /// The gradients at the pre-activations of step t from the gradient reaching h_t.
    fn backward<T: Real>(hidden: usize, step: Backward<'_, T>);

    /// The extra bias's gradient from the hidden-side gradients of all steps
    /// (T*B, G*H). Only called for cells with [`CellKind::EXTRA_BIAS`].
    fn extra_bias_gradient<T: Real>(_hidden: usize, _dhp: &[T], _grad: &mut [T]) {}
}

/// One step forward, for B streams.
pub struct Forward<'a, T> {
    /// (B, GH): Wx x_t + b
    pub xp: &'a [T],
    /// (B, GH): Wh h_{t-1}
    pub hp: &'a [T],
    /// (B, H): h_{t-1}
    pub h_prev: &'a [T],
    /// (B, H): c_{t-1} (cells with a cell state; empty otherwise)
    pub c_prev: &'a [T],
    /// The extra bias (H) (cells with one; empty otherwise)
    pub extra: &'a [T],
    /// (B, H): h_t, written
    pub h: &'a mut [T],
    /// (B, H): c_t, written (cells with a cell state)
    pub c: &'a mut [T],
    /// (B, CACHE*H): what the backward pass needs, written
    pub cache: &'a mut [T],
}

/// One step back, for B streams.
pub struct Backward<'a, T> {
    /// (B, H): the gradient reaching h_t (from the output above and from step t+1)
    pub dh: &'a [T],
    /// (B, H): the gradient reaching c_t from step t+1 on entry, reaching c_{t-1}
    /// on return (cells with a cell state)
    pub dc: &'a mut [T],
    /// (B, H): h_t, h_{t-1}, c_{t-1} and the cache, as the forward step left them
    pub h: &'a [T],
    pub h_prev: &'a [T],
    pub c_prev: &'a [T],
    pub cache: &'a [T],
    /// (B, GH): the gradient at the input-side pre-activations, written
    pub dxp: &'a mut [T],
    /// (B, GH): the gradient at the hidden-side ones, written (cells with
    /// [`CellKind::OWN_HIDDEN_GRADIENT`]; for the others it is dxp)
    pub dhp: &'a mut [T],
    /// (B, H): the part of the gradient reaching h_{t-1} that does not flow
    /// through Wh, written (zero for most cells)
    pub dh_prev: &'a mut [T],
}

/// Defines [`Cell`], the cell a model's layers use, from the list of cells: each
/// entry is the variant, the file (module) of the cell and the type in it
/// implementing [`CellKind`]. The variants' order is their number in
/// checkpoints: append, never reorder.
macro_rules! cells {
    ($($variant:ident => $file:ident::$kind:ident,)*) => {
        $(pub mod $file;)*
        /// The recurrent cell of every layer.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
        pub enum Cell {
            $($variant,)*
        }

        impl Cell {
            /// Every cell, in checkpoint order.
            pub const ALL: &[Cell] = &[$(Cell::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Cell::$variant => <$file::$kind>::NAME,)* }
            }

            pub fn title(self) -> &'static str {
                match self { $(Cell::$variant => <$file::$kind>::TITLE,)* }
            }

            pub fn gate_order(self) -> &'static str {
                match self { $(Cell::$variant => <$file::$kind>::GATE_ORDER,)* }
            }

            /// G: pre-activation blocks per hidden unit (tanh 1, LSTM 4, GRU 3).
            pub fn gates(self) -> usize {
                match self { $(Cell::$variant => <$file::$kind>::GATES,)* }
            }

            /// Values cached per step, stream and hidden unit for the backward pass.
            pub fn cache(self) -> usize {
                match self { $(Cell::$variant => <$file::$kind>::CACHE,)* }
            }

            /// Whether the cell carries a cell state beside h.
            pub fn has_cell_state(self) -> bool {
                match self { $(Cell::$variant => <$file::$kind>::CELL_STATE,)* }
            }

            /// Whether dhp differs from dxp (see [`CellKind::OWN_HIDDEN_GRADIENT`]).
            pub fn own_hidden_gradient(self) -> bool {
                match self { $(Cell::$variant => <$file::$kind>::OWN_HIDDEN_GRADIENT,)* }
            }

            pub fn extra_bias(self) -> Option<&'static str> {
                match self { $(Cell::$variant => <$file::$kind>::EXTRA_BIAS,)* }
            }

            /// One step in JavaScript (see [`CellKind::JS`]).
            pub fn js(self) -> &'static str {
                match self { $(Cell::$variant => <$file::$kind>::JS,)* }
            }

            /// The names of Wx, Wh and b.
            pub fn names(self) -> [&'static str; 3] {
                match self { $(Cell::$variant => <$file::$kind>::NAMES,)* }
            }

            pub fn init(self, hidden: usize) -> (Init, Init) {
                match self { $(Cell::$variant => <$file::$kind>::init(hidden),)* }
            }

            pub fn forward<T: Real>(self, hidden: usize, step: Forward<'_, T>) {
                match self { $(Cell::$variant => <$file::$kind>::forward(hidden, step),)* }
            }

            pub fn backward<T: Real>(self, hidden: usize, step: Backward<'_, T>) {
                match self { $(Cell::$variant => <$file::$kind>::backward(hidden, step),)* }
            }

            pub fn extra_bias_gradient<T: Real>(self, hidden: usize, dhp: &[T], grad: &mut [T]) {
                match self { $(Cell::$variant => <$file::$kind>::extra_bias_gradient(hidden, dhp, grad),)* }
            }
        }
    };
}

cells! {
    // min-char-rnn's vanilla tanh RNN
    Rnn => rnn::Rnn,
    // long short-term memory (PyTorch's gate order)
    Lstm => lstm::Lstm,
    // gated recurrent unit (PyTorch's and cuDNN's form)
    Gru => gru::Gru,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
