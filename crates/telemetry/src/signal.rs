//! The stop signal every binary honours.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on SIGTERM (what Kubernetes and compose send) or Ctrl-C.
pub async fn shutdown_signal() {
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
