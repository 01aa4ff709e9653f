use anyhow::Context;
use clap::Parser;
use funnel_pipeline::{Config, serve};
use funnel_store::Store;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_tracing(config.log_json);
    config.validate().map_err(anyhow::Error::msg)?;

    let store =
        Store::connect(&config.database_url, &config.store_options()).await.context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(serve(listener, store, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        result = &mut server => return Ok(result??),
        () = shutdown_signal() => info!(grace = ?config.shutdown_grace(), "shutting down; a second signal exits at once"),
    }
    let _ = stop.send(());
    tokio::select! {
        result = &mut server => result??,
        () = tokio::time::sleep(config.shutdown_grace()) => warn!("grace period over; exiting with requests in flight"),
        () = shutdown_signal() => warn!("second signal; exiting at once"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
