//! The orgop Lambda (custom runtime: deploy this binary as `bootstrap`).
//!
//! `orgop-lambda --invoke` runs one event read from stdin instead and prints the handler's
//! answer (or `{"errorType", "errorMessage"}` on stderr with exit status 1): the same code
//! path, for local tests and debugging.
use orgop_lambda::{deps_from_env, handle};
use serde_json::{Value, json};
use std::io::Read;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = match deps_from_env().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("orgop-lambda: {e}");
            std::process::exit(2);
        }
    };
    if std::env::args().any(|a| a == "--invoke") {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        let event: Value = serde_json::from_str(&input)?;
        match handle(event, &deps).await {
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
            handle(event.payload, deps)
                .await
                .map_err(lambda_runtime::Diagnostic::from)
        },
    ))
    .await
}
