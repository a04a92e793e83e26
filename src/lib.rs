//! charrnn: character-level recurrent language models, min-char-rnn exact by default.
//!
//! Data flows text -> [`data`] (vocabulary, ids) -> [`train`] asks [`model`] for the
//! loss and gradients -> [`optim`] updates -> [`checkpoint`] and [`history`] record.
//! [`sample`] writes text from a model; [`npz`] exchanges weights with NumPy.

pub mod backend;
pub mod baselines;
pub mod beam;
pub mod checkpoint;
pub mod corpus;
pub mod data;
pub mod export;
pub mod flags;
pub mod fsutil;
pub mod history;
pub mod linalg;
pub mod memory;
pub mod model;
pub mod npz;
pub mod optim;
pub mod parallel;
pub mod play;
pub mod plot;
pub mod prepare;
pub mod sample;
pub mod score;
pub mod train;
pub mod visualize;
