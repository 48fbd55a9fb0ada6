//! The shutdown signal every long-running subcommand (`consume`, `serve`) waits for.

use tracing::info;

/// Completes on SIGTERM or SIGINT (Ctrl-C), logging which. Where SIGTERM cannot be listened
/// to, on SIGINT only.
pub async fn signal() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = term => info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
    }
}
