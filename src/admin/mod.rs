//! The admin endpoint: `/metrics` (OpenMetrics text, which Prometheus reads,
//! or the Prometheus text format to a client that asks for `text/plain`
//! only), `/healthz` (alive) and `/readyz` (inputs open, outputs connected,
//! not shutting down).
//! Off unless an address is given; it keeps answering during a shutdown so
//! that probes see the drain. Its connections are bounded (`listener`).

mod listener;

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Format, Metrics};

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
}

/// A bound admin endpoint, not yet serving.
pub struct Admin {
    listener: TcpListener,
}

impl Admin {
    /// Binds `address` (`HOST:PORT`).
    pub async fn bind(address: &str) -> io::Result<Admin> {
        Ok(Admin {
            listener: TcpListener::bind(address).await?,
        })
    }

    /// The bound address.
    pub fn address(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub fn serve(self, metrics: Arc<Metrics>, stopping: CancellationToken) {
        let router = Router::new()
            .route("/metrics", get(metrics_text))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .with_state(AdminState { metrics, stopping });
        tokio::spawn(async move {
            let listener = listener::BoundedListener::new(self.listener);
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the admin endpoint stopped");
            }
        });
    }
}

async fn metrics_text(headers: HeaderMap, State(state): State<AdminState>) -> impl IntoResponse {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    state.metrics.set_ready(not_ready(&state).is_none());
    (
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render(format),
    )
}

/// Why the process is not ready, if it is not.
fn not_ready(state: &AdminState) -> Option<&'static str> {
    if state.stopping.is_cancelled() {
        Some("shutting down")
    } else {
        state.metrics.not_ready()
    }
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    match not_ready(&state) {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
