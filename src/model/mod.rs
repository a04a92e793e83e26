//! The models a trainer and a sampler see. The model never touches files,
//! the terminal or the command line.

pub mod rnn;

pub use rnn::{Rnn, RnnDims, Workspace};
