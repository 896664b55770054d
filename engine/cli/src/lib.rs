//! The command-line front end: argument parsing, diagnostic rendering, exit codes.
//!
//! Exit codes (the contract in docs/DESIGN.md): 0 success; 1 a runbook is invalid (or, for `run`
//! and `start --wait`, an item did not end ok/skipped or the execution failed; for `test`, a case
//! failed); 2 usage or I/O error, or a refusal before anything ran. Results go to stdout,
//! diagnostics and progress to stderr. A write to stdout that fails ends the command (see [`out`]): status 0
//! when the reader closed the pipe, 2 otherwise.
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod apply;
mod applylock;
mod approve;
mod call;
pub mod cases;
mod catalog;
mod changeplan;
mod deploy;
mod files;
mod out;
mod record;
mod render;
mod run;
mod scrub;
mod stacks;
pub mod start;
mod tablelock;
mod testcmd;

pub use files::{collect_runbooks, load_all};

/// Exit status: every runbook valid / every item ran.
pub const EXIT_OK: u8 = 0;
/// Exit status: a runbook is invalid / an item failed.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "orgop",
    version,
    about = "Declarative operations for AWS Organizations: run a runbook in every account and region",
    after_help = "Exit status: 0 success; 1 invalid runbook, a failed item (`run`, `start --wait`), a failed test case (`test`) or a failed deployment; 2 usage or I/O error, or a refusal before anything ran."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check runbooks: schema, step references, JMESPath, templates, schedule, read-only steps,
    /// and every call, parameter and field read against AWS's models.
    Validate(ValidateArgs),
    /// Compile runbooks to Amazon States Language (`DIR/<name>.asl.json`).
    Compile(CompileArgs),
    /// Print the runbook JSON Schema (the same as schema/runbook.schema.json).
    Schema,
    /// Run a runbook in every targeted account and region, from this machine.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::RunArgs),
    /// Make one AWS call by its IAM-style name and print the result as JSON, like
    /// `aws <service> <operation>`: for exploring an API before writing a step.
    Call(call::CallArgs),
    /// Write the member-account roles for a StackSet, allowed exactly the runbooks' calls.
    ///
    /// `DIR/member-roles.json`, for a service-managed StackSet: a read role allowed exactly the
    /// runbooks' step calls, and a remediation role (`role.apply_name`) for their actions.
    Stacksets(stacks::StackSetsArgs),
    /// Write the operations stack, the member-role template and the Lambda zip.
    ///
    /// `DIR/operations.json` (the orgop Lambda, a state machine and schedule per runbook, the
    /// results table, bucket and topic), `DIR/member-roles.json`, and the Lambda zip named by
    /// its content.
    Package(stacks::PackageArgs),
    /// Create or update the operations stack and the member-role StackSet; say what changed.
    #[command(after_help = deploy::AFTER_HELP)]
    Deploy(deploy::DeployArgs),
    /// Start a deployed runbook's state machine; with --wait, follow it and fetch its results.
    #[command(after_help = start::AFTER_HELP)]
    Start(start::StartArgs),
    /// Run runbooks' offline test cases (recorded responses, no AWS) and compare what they
    /// produce with what each case expects.
    #[command(after_help = testcmd::AFTER_HELP)]
    Test(testcmd::TestArgs),
    /// Run a runbook in one account and region and record it, scrubbed, as a test case.
    #[command(after_help = record::AFTER_HELP)]
    Record(record::RecordArgs),
    /// Review a change plan written by `orgop run --plan-out`.
    Plan(changeplan::PlanArgs),
    /// Apply exactly a reviewed plan: re-read each planned resource, act only on unchanged ones.
    #[command(after_help = apply::AFTER_HELP)]
    Apply(apply::ApplyArgs),
    /// Approve the plan a deployed run of a runbook with `approval` waits on: its workers then
    /// apply exactly that plan (each planned resource re-read first).
    #[command(after_help = approve::AFTER_HELP)]
    Approve(approve::DecisionArgs),
    /// Reject the plan a deployed run waits on: the execution ends `OrgOp.Rejected`, nothing
    /// applied.
    #[command(after_help = approve::AFTER_HELP)]
    Reject(approve::DecisionArgs),
    /// Write the catalog's README from the runbooks: what each finds and changes, its
    /// parameters, schedule, IAM actions and offline cases.
    #[command(after_help = catalog::AFTER_HELP)]
    Catalog(catalog::CatalogArgs),
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml (test cases' case.yaml excepted).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// `text` (file:line:col: message, with source excerpts) or `json` (an array on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

#[derive(Args, Debug)]
struct CompileArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml (test cases' case.yaml excepted).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Folder to write `<runbook name>.asl.json` into (created when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// `text` or `json` diagnostics.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Entry point of `orgop`.
pub fn main_orgop() -> ExitCode {
    let cli = Cli::parse();
    out::exit_status(match cli.command {
        Command::Validate(a) => validate(&a.paths, &a.format),
        Command::Compile(a) => compile(&a.paths, &a.out, &a.format),
        Command::Schema => out::print(orgop_check::schema::SCHEMA_TEXT).map(|()| EXIT_OK),
        Command::Run(a) => run::run(a),
        Command::Call(a) => call::call(&a),
        Command::Stacksets(a) => stacks::stacksets(&a),
        Command::Package(a) => stacks::package_command(&a),
        Command::Deploy(a) => deploy::deploy(a),
        Command::Start(a) => start::start(a),
        Command::Test(a) => testcmd::test(&a),
        Command::Record(a) => record::record(a),
        Command::Plan(a) => changeplan::plan_command(a),
        Command::Apply(a) => apply::apply(a),
        Command::Catalog(a) => catalog::catalog(&a),
        Command::Approve(a) => approve::approve(a),
        Command::Reject(a) => approve::reject(a),
    })
}

#[derive(Parser, Debug)]
#[command(
    name = "orgop-compile",
    version,
    about = "Compile orgop runbooks to Amazon States Language (the same as `orgop compile`)",
    after_help = "Exit status: 0 success, 1 invalid runbook, 2 usage or I/O error."
)]
struct CompileCli {
    #[command(flatten)]
    args: CompileArgs,
}

/// Entry point of `orgop-compile`.
pub fn main_compile() -> ExitCode {
    let cli = CompileCli::parse();
    out::exit_status(compile(&cli.args.paths, &cli.args.out, &cli.args.format))
}

/// The async runtime for commands that talk to AWS; says why when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("orgop: cannot start the async runtime: {e}");
            None
        }
    }
}

/// The AWS SDK's configuration for orgop's own plumbing (Step Functions, DynamoDB): the
/// standard credential chain, `region` when given (else `AWS_REGION`/profile, else
/// `us-east-1`), and `endpoint_url` when given (else `AWS_ENDPOINT_URL*`).
async fn sdk_config(region: Option<String>, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::{BehaviorVersion, Region};
    let region = RegionProviderChain::first_try(region.filter(|r| !r.is_empty()).map(Region::new))
        .or_default_provider()
        .or_else(Region::from_static("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// `Err` only for a failed write to stdout, as for every command.
fn validate(paths: &[PathBuf], format: &str) -> std::io::Result<u8> {
    let checked = match load_all(paths) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let invalid = render::report(&checked, format)?;
    Ok(if checked.unreadable > 0 {
        EXIT_USAGE
    } else if invalid {
        EXIT_INVALID
    } else {
        EXIT_OK
    })
}

fn compile(paths: &[PathBuf], out: &Path, format: &str) -> std::io::Result<u8> {
    let runbooks = match stacks::lowered(paths, format)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("orgop: cannot create {}: {e}", out.display());
        return Ok(EXIT_USAGE);
    }
    for lowered in &runbooks {
        let text = orgop_statemachine::to_json(&orgop_statemachine::compile(lowered));
        let target = out.join(format!("{}.asl.json", lowered.plan.runbook));
        if let Err(e) = std::fs::write(&target, text) {
            eprintln!("orgop: cannot write {}: {e}", target.display());
            return Ok(EXIT_USAGE);
        }
        out::println(&target.display().to_string())?;
    }
    Ok(EXIT_OK)
}
