//! A non-redacting relay for the forward-hop benchmark
//! (`benches/forward_hop.py`): listens on the first address and copies every
//! connection's bytes to a connection of its own to the second address, and
//! the replies (acknowledgements) back, unchanged. The least any relay on
//! the same path can cost: logredact's forward hop is measured against it.
//!
//! It copies through buffers of 1 MiB, so that a message of the benchmark
//! (843 KB) takes a read and a write or two, as logredact's do; with tokio's
//! default of 8 KiB it took about a hundred of each per message, which made
//! it cost twice as much CPU and left it slower than it need be.
//!
//! usage: cargo run --release --example forward_relay -- LISTEN_ADDR NEXT_HOP_ADDR

use tokio::net::{TcpListener, TcpStream};

/// Bytes copied at once, each way.
const BUFFER: usize = 1 << 20;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(next_hop)) = (args.next(), args.next()) else {
        eprintln!("usage: forward_relay LISTEN_ADDR NEXT_HOP_ADDR");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(&listen).await?;
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let next_hop = next_hop.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&next_hop).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut inbound,
                &mut outbound,
                BUFFER,
                BUFFER,
            )
            .await;
        });
    }
}
