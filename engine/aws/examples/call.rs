//! `orgop call` on its own: `cargo run -p orgop-aws --features cli --example call --
//! ec2:DescribeVolumes --region eu-west-1`. Prints the result as JSON; the release build of
//! this example is also how the crate's share of the binary size (with every bundled model)
//! is measured.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "orgop-call",
    about = "Make any AWS API call from the bundled models"
)]
struct Cli {
    #[command(flatten)]
    call: orgop_aws::cli::CallArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(orgop_aws::cli::call_command(&cli.call)) {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON values serialize")
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orgop call: {e}");
            std::process::ExitCode::from(if e.is_before_send() { 2 } else { 1 })
        }
    }
}
