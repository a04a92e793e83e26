//! Training text from other people's data: Stack Exchange dumps and source trees.

pub mod dump;
pub mod error;
pub mod files;
pub mod html;
pub mod stackexchange;
