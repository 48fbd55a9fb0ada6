//! The one `/metrics` + health endpoint server of the long-running commands (feature
//! `endpoint`): each builds its own health routes, this adds `/metrics` and serves them on the
//! listener bound from its `listen` setting until its stop signal.

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

/// Serves `app` plus `/metrics` (rendered from `prom`, the process's one recorder) on
/// `listener` until `stop` turns true (or its sender is dropped).
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    prom: PrometheusHandle,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = app.route("/metrics", get(move || async move { prom.render() }));
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_the_routes_and_metrics_until_stopped() {
        let prom = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let app = Router::new().route("/health", get(|| async { "fine" }));
        let task = serve(listener, app, prom, rx);
        assert!(get_path(addr, "/health").await.ends_with("fine"));
        assert!(get_path(addr, "/metrics").await.starts_with("HTTP/1.0 200"));
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
