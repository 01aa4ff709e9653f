use anyhow::Context;
use clap::Parser;
use funnel_pipeline::{Config, Security, serve_with};
use funnel_store::Store;
use funnel_telemetry::TracingOptions;
use funnel_telemetry::shutdown_signal;
use tokio::net::TcpListener;
use tracing::{info, warn};

// Every call allocates a few hundred small blocks (rows, strings, protobuf
// and HTTP/2 buffers); glibc's malloc took a quarter of the service's CPU
// under load (issue 7, B3).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _tracing = funnel_telemetry::init_tracing(&TracingOptions {
        service_name: "funnel-pipeline",
        json: config.log_json,
        otlp_endpoint: config.otlp_endpoint.clone(),
    })?;
    config.validate().map_err(anyhow::Error::msg)?;
    // Before the database: a server that would be exposed refuses at once.
    let security = Security::from_config(&config)?;
    security.check_exposure(config.listen)?;

    let store =
        Store::connect(&config.database_url, &config.store_options()).await.context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    funnel_telemetry::start_metrics_endpoint(config.metrics_listen, funnel_pipeline::metrics::registry()).await?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(serve_with(listener, store, config.serve_options().with_security(security), async {
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
