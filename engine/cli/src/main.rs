//! `orgop`: validate, compile and run runbooks across an AWS organization.
fn main() -> std::process::ExitCode {
    orgop_cli::main_orgop()
}
