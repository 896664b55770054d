//! `orgop stacksets` and `orgop package`: the CloudFormation templates (and the Lambda
//! artifact) that deploy orgop into an organization.
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, out, render};
use clap::Args;
use orgop_plan::Lowered;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// File name of the member-role template.
pub const MEMBER_ROLES_FILE: &str = "member-roles.json";
/// File name of the operations template.
pub const OPERATIONS_FILE: &str = "operations.json";
/// Where `scripts/lambda-zip.sh` (cargo-lambda) leaves the Lambda zip.
pub const DEFAULT_LAMBDA_ZIP: &str = "target/lambda-zip/orgop-lambda/bootstrap.zip";

#[derive(Args, Debug)]
pub struct StackSetsArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml: the roles allow exactly their calls.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Folder to write `member-roles.json` into (created when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// `text` or `json` diagnostics.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

#[derive(Args, Debug)]
pub struct PackageArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml: one state machine each.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Folder to write `operations.json`, `member-roles.json` and the Lambda zip into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The orgop Lambda zip (`bootstrap` for provided.al2023 on arm64), as built by
    /// `bash scripts/lambda-zip.sh`; default `target/lambda-zip/orgop-lambda/bootstrap.zip`.
    #[arg(long, value_name = "ZIP")]
    lambda_zip: Option<PathBuf>,
    /// `text` or `json` diagnostics.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// The lowered runbooks under `paths` (their diagnostics reported in `format`), or the exit
/// status after saying why not; `orgop compile` and the commands here share it.
pub(crate) fn lowered(
    paths: &[PathBuf],
    format: &str,
) -> std::io::Result<Result<Vec<Lowered>, u8>> {
    let checked = match crate::load_all(paths) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(Err(EXIT_USAGE));
        }
    };
    if render::report(&checked, format)? {
        eprintln!("orgop: nothing written: fix the runbooks above first");
        return Ok(Err(if checked.unreadable > 0 {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        }));
    }
    Ok(Ok(checked
        .reports
        .into_iter()
        .filter_map(|r| r.lowered)
        .collect()))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, u8> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("orgop: cannot create {}: {e}", dir.display());
        return Err(EXIT_USAGE);
    }
    let target = dir.join(name);
    std::fs::write(&target, bytes).map_err(|e| {
        eprintln!("orgop: cannot write {}: {e}", target.display());
        EXIT_USAGE
    })?;
    Ok(target)
}

/// The member-role template of `runbooks`, as text.
fn member_roles_text(runbooks: &[Lowered]) -> Result<String, u8> {
    let refs: Vec<&Lowered> = runbooks.iter().collect();
    orgop_stacksets::member_roles(&refs)
        .map(|t| orgop_stacksets::to_json(&t))
        .map_err(|e| {
            eprintln!("orgop: {e}");
            EXIT_USAGE
        })
}

pub fn stacksets(a: &StackSetsArgs) -> std::io::Result<u8> {
    let runbooks = match lowered(&a.paths, &a.format)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let written = member_roles_text(&runbooks)
        .and_then(|text| write(&a.out, MEMBER_ROLES_FILE, text.as_bytes()));
    match written {
        Ok(path) => {
            out::println(&path.display().to_string())?;
            Ok(EXIT_OK)
        }
        Err(code) => Ok(code),
    }
}

/// The key the Lambda zip gets in the artifact bucket: named by its content, so a new build
/// is a new key and CloudFormation updates the function.
pub fn lambda_key(zip: &[u8]) -> String {
    let digest = Sha256::digest(zip);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("orgop/lambda/orgop-lambda-{hex}.zip")
}

/// What `orgop package` made.
pub(crate) struct Package {
    pub operations: String,
    pub member_roles: String,
    /// The zip's key in the artifact bucket and its bytes.
    pub lambda: Option<(String, Vec<u8>)>,
}

/// Builds the templates and reads the zip; reports why not on stderr.
pub(crate) fn package(runbooks: &[Lowered], zip: Option<&Path>) -> Result<Package, u8> {
    let lambda = match zip {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                eprintln!(
                    "orgop: cannot read the Lambda zip {}: {e} (build it with `bash scripts/lambda-zip.sh`)",
                    path.display()
                );
                EXIT_USAGE
            })?;
            Some((lambda_key(&bytes), bytes))
        }
        None => None,
    };
    let refs: Vec<&Lowered> = runbooks.iter().collect();
    let options = orgop_stacksets::OperationsOptions {
        lambda_code_key: lambda.as_ref().map(|(k, _)| k.clone()),
    };
    let operations = orgop_stacksets::operations(&refs, &options).map_err(|e| {
        eprintln!("orgop: {e}");
        EXIT_USAGE
    })?;
    Ok(Package {
        operations: orgop_stacksets::to_json(&operations),
        member_roles: member_roles_text(runbooks)?,
        lambda,
    })
}

/// `--lambda-zip`, else the default path when it exists.
pub(crate) fn zip_path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        let default = PathBuf::from(DEFAULT_LAMBDA_ZIP);
        default.is_file().then_some(default)
    })
}

pub fn package_command(a: &PackageArgs) -> std::io::Result<u8> {
    let runbooks = match lowered(&a.paths, &a.format)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let zip = zip_path(a.lambda_zip.as_deref());
    let p = match package(&runbooks, zip.as_deref()) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut written = Vec::new();
    for (name, bytes) in [
        (OPERATIONS_FILE, p.operations.as_bytes()),
        (MEMBER_ROLES_FILE, p.member_roles.as_bytes()),
    ] {
        match write(&a.out, name, bytes) {
            Ok(path) => written.push(path),
            Err(code) => return Ok(code),
        }
    }
    match &p.lambda {
        Some((key, bytes)) => {
            let file = key.rsplit('/').next().unwrap_or(key);
            match write(&a.out, file, bytes) {
                Ok(path) => written.push(path),
                Err(code) => return Ok(code),
            }
        }
        None => eprintln!(
            "orgop: no Lambda zip ({DEFAULT_LAMBDA_ZIP} is missing and --lambda-zip not given): the template's LambdaCodeKey has no default; build it with `bash scripts/lambda-zip.sh`"
        ),
    }
    for path in written {
        out::println(&path.display().to_string())?;
    }
    Ok(EXIT_OK)
}
