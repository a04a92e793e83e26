//! charrnn's integration tests, one binary (it links the crate once): each
//! module is one behaviour a user relies on, driving the real `charrnn` binary
//! on temp directories (assert_cmd) or the library for the numerics. Shared
//! helpers are in [`common`]; [`plain`] is the plain-loop oracle of the
//! model's equations.

/// The allocator the `charrnn` binary installs, so every test allocates as it
/// does (and `alloc` can check its alignment).
#[global_allocator]
static ALLOCATOR: charrnn::parallel::LineAligned = charrnn::parallel::LineAligned;

mod common;
mod plain;

mod alloc;
mod checkpoints;
mod cli;
mod errors;
mod export;
mod fuzz_regressions;
mod generation;
mod gradcheck;
mod memory;
mod oracle;
mod play;
mod plot;
mod prepare;
mod quality_script;
mod reference;
mod reliability;
mod resume;
mod scale;
mod signals;
mod structure;
mod validation;
mod visualize;
