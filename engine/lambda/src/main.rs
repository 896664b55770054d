//! The orgop Lambda (custom runtime: deploy this binary as `bootstrap`).
//!
//! `orgop-lambda --invoke` runs one event read from stdin instead and prints the handler's
//! answer (or `{"errorType", "errorMessage"}` on stderr with exit status 1): the same code
//! path, for local tests and debugging.
//!
//! Logs are JSON lines, one span per invocation (`request_id`, `handler`, `execution`, and
//! the worker's `account` and `region`), at the level `ORGOP_LOG` sets (an `EnvFilter`
//! directive, default `info`): on stdout in Lambda (CloudWatch Logs), on stderr under
//! `--invoke`, where stdout is the answer.
use orgop_lambda::{deps_from_env, invoke};
use serde_json::{Value, json};
use std::io::Read;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn init_logging(local: bool) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .with_env_var("ORGOP_LOG")
        .from_env_lossy();
    let writer = if local {
        BoxMakeWriter::new(std::io::stderr)
    } else {
        BoxMakeWriter::new(std::io::stdout)
    };
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
}

/// The invocation's deadline (Lambda's, in epoch milliseconds) on this process's clock.
fn deadline_of(epoch_ms: u64) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    std::time::Instant::now() + std::time::Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let local = std::env::args().any(|a| a == "--invoke");
    init_logging(local);
    let deps = match deps_from_env().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("orgop-lambda: {e}");
            std::process::exit(2);
        }
    };
    if local {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        let event: Value = serde_json::from_str(&input)?;
        let request_id = format!("local-{}", std::process::id());
        match invoke(&request_id, event, &deps, None).await {
            Ok(v) => {
                println!("{v}");
                return Ok(());
            }
            Err(e) => {
                eprintln!(
                    "{}",
                    json!({"errorType": e.kind.name(), "errorMessage": e.message})
                );
                std::process::exit(1);
            }
        }
    }
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let deadline = deadline_of(event.context.deadline);
            invoke(
                &event.context.request_id,
                event.payload,
                deps,
                Some(deadline),
            )
            .await
            .map_err(lambda_runtime::Diagnostic::from)
        },
    ))
    .await
}
