//! The admin endpoint: `/metrics` (OpenMetrics text, which Prometheus reads), `/healthz`
//! (alive) and `/readyz` (inputs open, outputs connected, not shutting down).
//! Off unless an address is given; it keeps answering during a shutdown so
//! that probes see the drain. Its connections are bounded (`listener`).

mod listener;

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};

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

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.stopping.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".to_string(),
        );
    }
    match state.metrics.not_ready() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
