//! `orgop call SERVICE:Operation`: one AWS call by its IAM-style name, printed as JSON.
//!
//! Guarantees: the call is checked against the model before anything is sent (unknown
//! service, operation or parameter fail with close matches); `--params` is a JSON object or
//! `@file`; `--paginate` follows the paginator and merges the pages like
//! `aws ... --paginate`; `--role-arn` assumes that role (its account is the target's);
//! `--endpoint-url` and `--models-dir` apply to this call only.

use std::path::PathBuf;

use orgop_aws::{AwsClient, CallError, ClientOptions, RoleSpec, Target};
use serde_json::Value;

use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, out};

/// Arguments of `orgop call`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// The call as IAM names it: `ec2:DescribeVolumes`, `elasticloadbalancing:DescribeLoadBalancers`.
    #[arg(value_name = "SERVICE:Operation")]
    pub call: String,
    /// Parameters as a JSON object, or `@file` to read them from a file.
    #[arg(long, value_name = "JSON|@file")]
    pub params: Option<String>,
    /// Region (default: AWS_REGION, the profile's region, else us-east-1).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Follow the paginator and print every page merged into one result.
    #[arg(long)]
    pub paginate: bool,
    /// Assume this role first (`arn:aws:iam::123456789012:role/Name`).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// External id for `--role-arn`.
    #[arg(long, value_name = "ID", requires = "role_arn")]
    pub external_id: Option<String>,
    /// Send every request to this URL (an emulator, a VPC endpoint).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Add a directory of models in botocore's data layout (repeatable).
    #[arg(long, value_name = "DIR")]
    pub models_dir: Vec<PathBuf>,
    /// Named profile of the shared AWS config files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// Why `orgop call` failed.
#[derive(Debug)]
pub enum CallCommandError {
    /// The command line is wrong (the call's name, `--params`); nothing was sent.
    Usage(String),
    /// The client refused the call or AWS answered an error.
    Call(CallError),
}

impl std::fmt::Display for CallCommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallCommandError::Usage(m) => f.write_str(m),
            CallCommandError::Call(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CallCommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallCommandError::Usage(_) => None,
            CallCommandError::Call(e) => Some(e),
        }
    }
}

impl From<CallError> for CallCommandError {
    fn from(e: CallError) -> CallCommandError {
        CallCommandError::Call(e)
    }
}

impl CallCommandError {
    /// 2 when nothing was sent (the call is wrong), 1 when AWS answered an error.
    pub fn exit_status(&self) -> u8 {
        match self {
            CallCommandError::Call(e) if !e.is_before_send() => EXIT_INVALID,
            _ => EXIT_USAGE,
        }
    }
}

/// The largest `--params` orgop reads: 1 MiB. AWS request bodies are smaller (most APIs
/// take at most a few hundred KB; an S3 object body is not a parameter here).
pub const MAX_PARAMS_BYTES: u64 = 1 << 20;

/// Reads at most [`MAX_PARAMS_BYTES`] of `path`: a larger file (or an endless one such as
/// `/dev/zero`) fails after reading one byte past the limit.
fn read_params_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = Vec::new();
    file.take(MAX_PARAMS_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// Parses `--params`: absent → `{}`, `@path` → the file's JSON, else the argument's JSON; at
/// most [`MAX_PARAMS_BYTES`], nested at most [`orgop_aws::MAX_DEPTH`] levels.
pub fn read_params(params: Option<&str>) -> Result<Value, CallCommandError> {
    let usage = CallCommandError::Usage;
    let Some(p) = params else {
        return Ok(Value::Object(Default::default()));
    };
    let (text, from) = match p.strip_prefix('@') {
        Some(path) => (
            read_params_file(path).map_err(|e| usage(format!("--params @{path}: {e}")))?,
            format!("@{path}"),
        ),
        None => (p.as_bytes().to_vec(), "--params".to_string()),
    };
    if text.len() as u64 > MAX_PARAMS_BYTES {
        return Err(usage(format!(
            "{from}: larger than the limit of {MAX_PARAMS_BYTES} bytes (1 MiB) for parameters; AWS request bodies are smaller"
        )));
    }
    let v: Value = orgop_aws::from_json_slice(&text).map_err(|e| match e {
        orgop_aws::JsonTextError::TooDeep { .. } => usage(format!("{from}: {e}")),
        orgop_aws::JsonTextError::Syntax(_) => usage(format!("{from}: not JSON: {e}")),
    })?;
    if !v.is_object() {
        return Err(usage(format!("{from}: expected a JSON object")));
    }
    Ok(v)
}

/// Splits `service:Operation`.
pub fn split_call(call: &str) -> Result<(&str, &str), CallCommandError> {
    call.split_once(':')
        .filter(|(s, o)| !s.is_empty() && !o.is_empty())
        .ok_or_else(|| {
            CallCommandError::Usage(format!(
                "`{call}`: expected SERVICE:Operation, like ec2:DescribeVolumes"
            ))
        })
}

/// Runs `orgop call` and returns the result to print as JSON.
pub async fn call_command(args: &CallArgs) -> Result<Value, CallCommandError> {
    let (service, operation) = split_call(&args.call)?;
    let params = read_params(args.params.as_deref())?;
    let client = AwsClient::from_env(ClientOptions {
        region: args.region.clone(),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        models_dirs: args.models_dir.clone(),
        ..ClientOptions::default()
    })
    .await;
    client.check(service, operation, &params)?;
    let region = client.default_region().to_string();
    let target = match &args.role_arn {
        Some(arn) => Target {
            account_id: orgop_aws::credentials::account_of_arn(arn)
                .unwrap_or_default()
                .to_string(),
            region,
            role: Some(RoleSpec {
                name: arn.clone(),
                external_id: args.external_id.clone(),
                session_name: None,
            }),
        },
        None => Target::own(region),
    };
    Ok(if args.paginate {
        client
            .paginate_all(&target, service, operation, params)
            .await?
    } else {
        client.call(&target, service, operation, params).await?
    })
}

/// Runs `orgop call` and prints its result. `Err` only when writing to stdout fails.
pub fn call(args: &CallArgs) -> std::io::Result<u8> {
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    Ok(match rt.block_on(call_command(args)) {
        Ok(v) => {
            out::println(&serde_json::to_string_pretty(&v).expect("JSON serializes"))?;
            EXIT_OK
        }
        Err(e) => {
            eprintln!("orgop call: {e}");
            e.exit_status()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        call: CallArgs,
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from([
            "orgop",
            "ec2:DescribeVolumes",
            "--params",
            "{\"MaxResults\":5}",
            "--region",
            "eu-west-1",
            "--paginate",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(cli.call.call, "ec2:DescribeVolumes");
        assert!(cli.call.paginate);
        assert_eq!(
            read_params(cli.call.params.as_deref()).unwrap()["MaxResults"],
            5
        );
        assert!(read_params(Some("[1]")).is_err());
        assert!(split_call("ec2").is_err());
    }

    #[tokio::test]
    async fn bad_calls_fail_before_sending() {
        // An endpoint nothing listens on: reaching it would be a transport error instead.
        let args = CallArgs {
            call: "ec2:DescribeVolume".into(),
            params: None,
            region: Some("us-east-1".into()),
            paginate: false,
            role_arn: None,
            external_id: None,
            endpoint_url: Some("http://127.0.0.1:9".into()),
            models_dir: vec![],
            profile: None,
        };
        let err = call_command(&args).await.unwrap_err();
        assert!(err.to_string().contains("DescribeVolumes"), "{err}");
        let args = CallArgs {
            call: "ec2:DescribeVolumes".into(),
            params: Some("{\"VolumeId\": [\"vol-1\"]}".into()),
            ..args
        };
        let err = call_command(&args).await.unwrap_err();
        assert!(
            matches!(err, CallCommandError::Call(CallError::Validation { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("VolumeIds"), "{err}");
    }
}
