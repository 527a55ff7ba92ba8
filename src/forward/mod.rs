//! The Fluent forward protocol (v1): logredact as a hop between Fluent Bit
//! or Fluentd peers, listening on `forward://HOST:PORT` and connecting to
//! the next hop's `forward://HOST:PORT` — or writing the records as lines
//! of JSON to any other output.
//!
//! Records go in and records come out: every string inside a record (map
//! keys, nested values, the tag) is redacted as
//! [`crate::scan::msgpack`] describes, and every other byte goes on
//! unchanged. A chunk is acknowledged to its sender only once the next hop
//! has acknowledged it (or, for another output, once its lines are
//! written).
//!
//! - `frame`: where a msgpack value ends in bytes as they arrive;
//! - `message`: the four modes of event messages, redacted, and
//!   acknowledgements;
//! - `server`: an inbound connection, read, redacted and acknowledged;
//! - `client`: the connection to the next hop, with acknowledgements,
//!   reconnection and sending again;
//! - `lines`: records as lines of JSON, for an output that is not a forward
//!   hop;
//! - `next_hop`: where a connection's messages go (a forward hop, or lines on
//!   the shared output), acknowledged once delivered there;
//! - `handshake`: HELO, PING and PONG (shared key, users), when configured;
//! - `listener`: the accept loop;
//! - `settings`: limits, and which inputs and outputs go together.

mod client;
mod frame;
mod handshake;
mod lines;
mod listener;
mod message;
mod next_hop;
mod server;
mod settings;

pub(crate) use listener::ForwardListener;
pub(crate) use next_hop::NextHop;
pub(crate) use settings::ForwardLimits;
pub(crate) use settings::check_topology;
