//! `orgop-compile`: the same as `orgop compile`, named for CI pipelines.
fn main() -> std::process::ExitCode {
    orgop_cli::main_compile()
}
