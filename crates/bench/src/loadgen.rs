//! The load generator: a fixed number of tonic calls in flight for a fixed
//! time (closed loop), or a fixed arrival rate (open loop, latency measured
//! from the intended start so a stall is not hidden), with an hdrhistogram
//! of latencies and the generator's own CPU time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

/// One call of the operation under load; `worker` and `iteration` let it
/// pick its own key.
pub type Operation =
    Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    pub concurrency: usize,
    pub duration: Duration,
    /// Calls per second over all workers (open loop); `None` is closed loop.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub completed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub throughput: f64,
    pub p50_micros: u64,
    pub p99_micros: u64,
    /// CPU seconds the generator process used per wall second (1.0 = one core).
    pub client_cpu_cores: f64,
}

/// How long [`warm_up`] runs.
pub const WARM_UP: Duration = Duration::from_secs(2);

/// Closed-loop calls for [`WARM_UP`], not recorded, before a benchmark's
/// first pair: a service just started (or restarted for another pinning)
/// opens its database connections and prepares its statements in its first
/// calls, which pgbench's figures leave out ("without initial connection
/// time"). B4's first funnel run, with no warm-up, had a p99 of 52-122 ms
/// against 13-26 ms for the runs after it.
pub async fn warm_up(concurrency: usize, operation: Operation) -> anyhow::Result<()> {
    let result = run(LoadShape { concurrency, duration: WARM_UP, rate: None }, operation).await?;
    if let Some(error) = result.first_error {
        anyhow::bail!("warm-up: {} errors, the first {error}", result.errors);
    }
    Ok(())
}

struct Shared {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

pub async fn run(shape: LoadShape, operation: Operation) -> anyhow::Result<LoadResult> {
    let shared = Arc::new(Mutex::new(Shared {
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        errors: 0,
        first_error: None,
    }));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let deadline = started + shape.duration;
    let mut workers = Vec::with_capacity(shape.concurrency);
    for worker in 0..shape.concurrency {
        let operation = operation.clone();
        let shared = shared.clone();
        // Open loop: worker w fires at start + (w + k * concurrency) / rate.
        let interval = shape.rate.map(|rate| Duration::from_secs_f64(shape.concurrency as f64 / rate));
        let offset = shape.rate.map(|rate| Duration::from_secs_f64(worker as f64 / rate));
        workers.push(tokio::spawn(async move {
            let mut local = match Histogram::<u64>::new_with_bounds(1, 60_000_000, 3) {
                Ok(histogram) => histogram,
                Err(_) => return,
            };
            let mut errors = 0;
            let mut first_error = None;
            let mut iteration = 0_u64;
            loop {
                let intended = match (interval, offset) {
                    (Some(interval), Some(offset)) => {
                        let at = started + offset + interval.mul_f64(iteration as f64);
                        if at >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    _ => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        now
                    }
                };
                let outcome = operation(worker, iteration).await;
                let latency = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                match outcome {
                    Ok(()) => {
                        let _ = local.record(latency.min(60_000_000));
                    }
                    Err(status) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{:?}: {}", status.code(), status.message()));
                        }
                    }
                }
                iteration += 1;
            }
            let mut shared = shared.lock().await;
            let _ = shared.histogram.add(&local);
            shared.errors += errors;
            if shared.first_error.is_none() {
                shared.first_error = first_error;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_before;
    let shared = shared.lock().await;
    let completed = shared.histogram.len();
    Ok(LoadResult {
        completed,
        errors: shared.errors,
        first_error: shared.first_error.clone(),
        seconds,
        throughput: completed as f64 / seconds,
        p50_micros: shared.histogram.value_at_quantile(0.5),
        p99_micros: shared.histogram.value_at_quantile(0.99),
        client_cpu_cores: cpu_seconds / seconds,
    })
}

/// User plus system CPU time of this process, from `/proc/self/stat`
/// (clock ticks of 1/100 s, the Linux default).
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
