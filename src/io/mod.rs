//! Everything that reads or writes the outside world, and what the model does
//! not need to know about it: the training text ([`corpus`], its vocabulary in
//! [`data`], UTF-8 decoding in [`utf8`]), its reference points ([`baselines`]),
//! making training text ([`prepare`]), weights for other tools ([`npz`],
//! [`export`]), the pages and plots ([`play`], [`visualize`], [`plot`]), and
//! files that are replaced atomically and locked ([`fsutil`]).

pub mod baselines;
pub mod corpus;
pub mod data;
pub mod export;
pub mod fsutil;
pub mod npz;
pub mod play;
pub mod plot;
pub mod prepare;
pub mod utf8;
pub mod visualize;
