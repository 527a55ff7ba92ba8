//! Helpers shared by the integration tests, one module per idea: test tokens
//! and the reference redaction (`tokens`), the harness for processes under
//! test (`process`), sockets (`network`), files (`fs`), and TLS peers and
//! certificates (`tls`). Each test binary uses a part of them.
#![allow(dead_code, unused_imports)]

mod fs;
mod network;
mod process;
mod tls;
mod tokens;
mod venv;

pub use fs::*;
pub use network::*;
pub use process::*;
pub use tls::*;
pub use tokens::*;
pub use venv::*;
