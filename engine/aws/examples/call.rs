//! One AWS call with this crate alone: `cargo run -p orgop-aws --example call --
//! ec2:DescribeVolumes '{"MaxResults": 5}'` (region, credentials and endpoint from the
//! environment, as for any AWS SDK). Prints the result as JSON. The release build of this
//! example is how the crate's share of the binary size (with every bundled model) is measured;
//! `orgop call` (engine/cli) is the full command, with its options.

use std::process::ExitCode;

use orgop_aws::{AwsClient, ClientOptions, Target};
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((service, operation)) = args.first().and_then(|c| c.split_once(':')) else {
        eprintln!("usage: call SERVICE:Operation [PARAMS_JSON]");
        return ExitCode::from(2);
    };
    let params: Value = match args.get(1).map(|p| serde_json::from_str(p)) {
        None => Value::Object(Default::default()),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            eprintln!("call: PARAMS_JSON is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(async {
        let client = AwsClient::from_env(ClientOptions::default()).await;
        let target = Target::own(client.default_region().to_string());
        client.call(&target, service, operation, params).await
    });
    match result {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON values serialize")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("call: {e}");
            ExitCode::from(if e.is_before_send() { 2 } else { 1 })
        }
    }
}
