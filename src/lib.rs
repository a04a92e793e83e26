//! charrnn: character-level recurrent language models, min-char-rnn exact by default.
//!
//! Data flows text -> [`io`] (the corpus, its vocabulary and ids) -> [`train`]
//! asks a [`backend`] for the loss and gradients of the [`model`], combines,
//! clips and updates them ([`optim`]) -> `train::checkpoint` and
//! `train::history` record. [`sample`] writes text from a model; [`io`] also
//! exchanges weights with other tools and draws plots and pages.

pub mod backend;
pub mod flags;
pub mod io;
pub mod linalg;
pub mod memory;
pub mod model;
pub mod optim;
pub mod parallel;
pub mod sample;
pub mod train;
