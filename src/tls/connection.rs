//! A TCP connection, plaintext or TLS: one reader and writer for both, so
//! that the TCP input and output are the same code whatever the transport.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// An established connection: after the handshake, for TLS.
pub(crate) enum Connection {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, either side.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection {
    /// Whether the peer has closed its side: a read would return end of
    /// file (or fail). Whatever the peer sent is not ours to interpret and
    /// is discarded. Never waits.
    ///
    /// Over TLS the bytes on the socket are records, which only the TLS
    /// layer may read (a TLS 1.3 server sends session tickets after the
    /// handshake, for one): the TLS stream is polled once, with a waker
    /// that does nothing, and what it says decides.
    pub(crate) fn peer_closed(&mut self) -> bool {
        let mut scratch = [0u8; 1024];
        match self {
            Connection::Plain(stream) => loop {
                match stream.try_read(&mut scratch) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(_) => return true,
                }
            },
            Connection::Tls(stream) => {
                let mut context = Context::from_waker(Waker::noop());
                loop {
                    let mut buffer = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut **stream).poll_read(&mut context, &mut buffer) {
                        Poll::Ready(Ok(())) if buffer.filled().is_empty() => return true,
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(_)) => return true,
                        Poll::Pending => return false,
                    }
                }
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Connection::Tls(stream) => Pin::new(&mut **stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(stream) => stream.is_write_vectored(),
            Connection::Tls(stream) => stream.is_write_vectored(),
        }
    }

    /// Over TLS, writes the records the TLS layer still holds to the socket.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    /// Over TLS, sends `close_notify` first.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Tls(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
        }
    }
}
