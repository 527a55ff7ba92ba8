//! The scanner core: rules, the streaming matcher, the context window and
//! classification. Plain synchronous code over `&[u8]`; it knows nothing about
//! files, sockets or tokio, so it can be tested exhaustively and benchmarked
//! alone.

pub(crate) mod classify;
pub mod detection;
pub mod fingerprint;
pub mod mask;
pub mod msgpack;
pub mod rule;
pub mod scanner;
pub(crate) mod window;
