//! The admin endpoint's listener: at most [`MAX_CONNECTIONS`] connections at
//! once (more are closed at accept), each closed when it sends nothing for
//! [`IDLE_TIMEOUT`] or has been open [`MAX_LIFETIME`]. An endpoint reachable
//! by others must not be able to take the file descriptors the inputs and
//! outputs need.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Admin connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// An admin connection that sends nothing this long is closed (a probe or
/// a scrape sends its request at once).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// No admin connection stays open longer.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// At most one log line this often about refused connections or failed
/// accepts.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// A listener that keeps its connections within bounds.
pub(crate) struct BoundedListener {
    listener: TcpListener,
    places: Arc<Semaphore>,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl BoundedListener {
    pub(crate) fn new(listener: TcpListener) -> BoundedListener {
        BoundedListener {
            listener,
            places: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            last_log: None,
            unlogged: 0,
        }
    }

    /// Logs at most once per [`LOG_INTERVAL`], with how many events since.
    fn log(&mut self, what: &str, error: Option<&io::Error>) {
        self.unlogged += 1;
        if self.last_log.is_some_and(|at| at.elapsed() < LOG_INTERVAL) {
            return;
        }
        match error {
            Some(e) => {
                tracing::warn!(error = %e, count = self.unlogged, max_connections = MAX_CONNECTIONS, "admin endpoint: {what}")
            }
            None => tracing::warn!(
                count = self.unlogged,
                max_connections = MAX_CONNECTIONS,
                "admin endpoint: {what}"
            ),
        }
        self.last_log = Some(Instant::now());
        self.unlogged = 0;
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off, do not spin.
                    self.log("accept failed", Some(&e));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(10);
            match Arc::clone(&self.places).try_acquire_owned() {
                Ok(place) => return (Guarded::new(stream, place), peer),
                Err(_) => {
                    drop(stream);
                    self.log("connections over the limit closed", None);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An admin connection: its place under the limit, and its timers.
pub(crate) struct Guarded {
    io: TcpStream,
    _place: OwnedSemaphorePermit,
    idle: Pin<Box<Sleep>>,
    lifetime: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(io: TcpStream, place: OwnedSemaphorePermit) -> Guarded {
        Guarded {
            io,
            _place: place,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            lifetime: Box::pin(tokio::time::sleep(MAX_LIFETIME)),
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready() || self.lifetime.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "admin connection idle or open too long",
    )
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let next = tokio::time::Instant::now() + IDLE_TIMEOUT;
                this.idle.as_mut().reset(next);
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
