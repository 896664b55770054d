//! `orgop deploy`: the operations stack and the member-role StackSet, created or updated
//! through orgop's own AWS client.
use crate::stacks::{self, Package};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, out};
use clap::Args;
use orgop_aws::{AwsClient, CallError, ClientOptions, Target};
use orgop_deploy::{
    ArtifactOutcome, CallAs, DeployError, StackOutcome, StackSetOutcome, StackSetSpec, StackSpec,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// CloudFormation's limit on an inline template body; larger templates go by S3 URL.
const TEMPLATE_BODY_LIMIT: usize = 51_200;

pub const AFTER_HELP: &str = "\
In order: uploads the Lambda zip to --artifact-bucket (skipped when the same bytes are there),
creates or updates the operations stack (a change set; nothing is sent when the template and
parameters are what is deployed), then creates or updates the member-role StackSet
(service-managed, automatic deployment) with instances in --organizational-units (default: the
organization's root) in one region (IAM is global). Run it from the organization's management
account, or a delegated administrator with --call-as delegated-admin.

Exit status: 0 deployed (or nothing to change); 1 CloudFormation refused or failed (its
reasons are printed); 2 usage, bad runbooks, no Lambda zip, or nothing could be sent.";

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// S3 bucket (in the stack's region) the Lambda zip is uploaded to.
    #[arg(long, value_name = "BUCKET")]
    artifact_bucket: String,
    /// The operations stack's name.
    #[arg(long, default_value = "orgop", value_name = "NAME")]
    stack_name: String,
    /// The member-role StackSet's name.
    #[arg(long, default_value = "orgop-member-roles", value_name = "NAME")]
    stackset_name: String,
    /// Organizational units (or the root, r-...) whose accounts get the member roles
    /// (comma-separated; default: the root, the whole organization).
    #[arg(long, value_delimiter = ',', value_name = "OU")]
    organizational_units: Vec<String>,
    /// The one region the member roles' stack instances go to (default: the stack's region).
    #[arg(long, value_name = "REGION")]
    stackset_region: Option<String>,
    /// The organization's id (default: asked of Organizations, DescribeOrganization).
    #[arg(long, value_name = "o-...")]
    organization_id: Option<String>,
    /// `self` (the management account) or `delegated-admin` (a StackSets delegated administrator).
    #[arg(long, default_value = "self", value_parser = ["self", "delegated-admin"])]
    call_as: String,
    /// An operations-stack parameter (repeatable), e.g. SlackWebhookUrl=https://...,
    /// ResultsRetentionDays=30.
    #[arg(long = "parameter", value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    /// The orgop Lambda zip; default target/lambda-zip/orgop-lambda/bootstrap.zip
    /// (`bash scripts/lambda-zip.sh` builds it).
    #[arg(long, value_name = "ZIP")]
    lambda_zip: Option<PathBuf>,
    /// Region of the operations stack (default: AWS_REGION, the profile's region, else us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Named profile (default: AWS_PROFILE).
    #[arg(long)]
    profile: Option<String>,
    /// Send every request here instead of AWS (an emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// `text` (lines on stderr) or `json` (one object on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Why a deployment stopped, and the exit status it gets.
enum Stop {
    /// Before anything was written.
    Usage(String),
    /// CloudFormation (or S3) refused or failed.
    Failed(DeployError),
}

impl From<DeployError> for Stop {
    fn from(e: DeployError) -> Self {
        Stop::Failed(e)
    }
}

pub fn deploy(a: DeployArgs) -> std::io::Result<u8> {
    // Diagnostics go to stderr as text: --format is the report's.
    let runbooks = match stacks::lowered(&a.paths, "text")? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Some(zip) = stacks::zip_path(a.lambda_zip.as_deref()) else {
        eprintln!(
            "orgop: no Lambda zip: {} is missing and --lambda-zip was not given; build it with `bash scripts/lambda-zip.sh`",
            stacks::DEFAULT_LAMBDA_ZIP
        );
        return Ok(EXIT_USAGE);
    };
    let package = match stacks::package(&runbooks, Some(&zip)) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let overrides = match parse_parameters(&a.parameters) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    let json = a.format == "json";
    match rt.block_on(run(&a, &package, overrides)) {
        Ok(report) => {
            if json {
                out::println(&report.to_string())?;
            } else {
                eprint!("{}", text(&report));
            }
            Ok(EXIT_OK)
        }
        Err(Stop::Usage(message)) => {
            eprintln!("orgop: {message}");
            Ok(EXIT_USAGE)
        }
        Err(Stop::Failed(e)) => {
            eprintln!("orgop: deploy failed: {e}");
            Ok(EXIT_INVALID)
        }
    }
}

fn parse_parameters(raw: &[String]) -> Result<BTreeMap<String, String>, String> {
    raw.iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--parameter {p}: expected KEY=VALUE"))
        })
        .collect()
}

/// One call with the caller's own credentials; an error before anything was deployed.
async fn ask(client: &AwsClient, service: &str, operation: &str) -> Result<Value, Stop> {
    let target = Target::own(client.default_region());
    client
        .call(&target, service, operation, json!({}))
        .await
        .map_err(|e: CallError| Stop::Usage(format!("{service}:{operation}: {e}")))
}

async fn run(
    a: &DeployArgs,
    package: &Package,
    overrides: BTreeMap<String, String>,
) -> Result<Value, Stop> {
    let client = AwsClient::from_env(ClientOptions {
        region: a.region.clone(),
        profile: a.profile.clone(),
        endpoint_url: a.endpoint_url.clone(),
        ..ClientOptions::default()
    })
    .await;
    let region = client.default_region().to_string();
    let account = ask(&client, "sts", "GetCallerIdentity").await?["Account"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Stop::Usage("sts:GetCallerIdentity answered no Account".into()))?;
    let organization = match &a.organization_id {
        Some(id) => id.clone(),
        None => ask(&client, "organizations", "DescribeOrganization").await?["Organization"]["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Stop::Usage("organizations:DescribeOrganization answered no Id".into())
            })?,
    };
    let ous = if a.organizational_units.is_empty() {
        let roots = ask(&client, "organizations", "ListRoots").await?;
        let root = roots["Roots"][0]["Id"]
            .as_str()
            .ok_or_else(|| Stop::Usage("organizations:ListRoots answered no root".into()))?;
        vec![root.to_string()]
    } else {
        a.organizational_units.clone()
    };

    let (key, zip) = package.lambda.as_ref().expect("deploy packages with a zip");
    // Nothing is deployed yet: a bucket that cannot be written is a refusal, not a failure.
    let uploaded = orgop_deploy::upload_artifact(&client, &a.artifact_bucket, key, zip)
        .await
        .map_err(|e| Stop::Usage(format!("cannot upload the Lambda zip: {e}")))?;

    let mut parameters = BTreeMap::from([
        ("ArtifactBucket".to_string(), a.artifact_bucket.clone()),
        ("LambdaCodeKey".to_string(), key.clone()),
        ("OrganizationId".to_string(), organization.clone()),
    ]);
    parameters.extend(overrides);
    let template_url = large_template(
        &client,
        &a.artifact_bucket,
        &region,
        &a.stack_name,
        &package.operations,
    )
    .await?;
    let stack = orgop_deploy::deploy_stack(
        &client,
        &region,
        &StackSpec {
            name: a.stack_name.clone(),
            template_body: package.operations.clone(),
            template_url,
            parameters,
            capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
            tags: BTreeMap::from([("orgop:stack".to_string(), "operations".to_string())]),
        },
    )
    .await?;

    let stackset_template_url = large_template(
        &client,
        &a.artifact_bucket,
        &region,
        &a.stackset_name,
        &package.member_roles,
    )
    .await?;
    let stackset = orgop_deploy::deploy_stackset(
        &client,
        &region,
        &StackSetSpec {
            name: a.stackset_name.clone(),
            template_body: package.member_roles.clone(),
            template_url: stackset_template_url,
            parameters: BTreeMap::from([
                ("OperationsAccountId".to_string(), account),
                ("OrganizationId".to_string(), organization),
            ]),
            capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
            organizational_units: ous,
            regions: vec![a.stackset_region.clone().unwrap_or_else(|| region.clone())],
            call_as: if a.call_as == "delegated-admin" {
                CallAs::DelegatedAdmin
            } else {
                CallAs::SelfAccount
            },
            ..StackSetSpec::default()
        },
    )
    .await?;
    Ok(report(a, key, &uploaded, &stack, &stackset))
}

/// A template over CloudFormation's inline limit is uploaded next to the Lambda zip, and sent
/// by URL.
async fn large_template(
    client: &AwsClient,
    bucket: &str,
    region: &str,
    name: &str,
    body: &str,
) -> Result<Option<String>, Stop> {
    if body.len() <= TEMPLATE_BODY_LIMIT {
        return Ok(None);
    }
    let key = format!("orgop/templates/{name}.json");
    orgop_deploy::upload_artifact(client, bucket, &key, body.as_bytes()).await?;
    Ok(Some(format!(
        "https://{bucket}.s3.{region}.amazonaws.com/{key}"
    )))
}

fn changes(list: &[orgop_deploy::Change]) -> Value {
    list.iter()
        .map(|c| {
            json!({
                "action": c.action,
                "logical_id": c.logical_id,
                "resource_type": c.resource_type,
                "replacement": c.replacement,
            })
        })
        .collect()
}

fn report(
    a: &DeployArgs,
    key: &str,
    uploaded: &ArtifactOutcome,
    stack: &StackOutcome,
    stackset: &StackSetOutcome,
) -> Value {
    let stack = match stack {
        StackOutcome::Created {
            stack_id,
            changes: c,
            ..
        } => {
            json!({"name": a.stack_name, "outcome": "created", "stack_id": stack_id, "changes": changes(c)})
        }
        StackOutcome::Updated {
            stack_id,
            changes: c,
        } => {
            json!({"name": a.stack_name, "outcome": "updated", "stack_id": stack_id, "changes": changes(c)})
        }
        StackOutcome::Unchanged { stack_id } => {
            json!({"name": a.stack_name, "outcome": "unchanged", "stack_id": stack_id, "changes": []})
        }
    };
    let (outcome, instances) = match stackset {
        StackSetOutcome::Created { instances, .. } => ("created", instances),
        StackSetOutcome::Updated { instances, .. } => ("updated", instances),
        StackSetOutcome::Unchanged { instances } => ("unchanged", instances),
    };
    let instances: Vec<Value> = instances
        .iter()
        .map(|i| json!({"account": i.account, "region": i.region, "status": i.status, "reason": i.status_reason}))
        .collect();
    json!({
        "lambda": {
            "uri": format!("s3://{}/{key}", a.artifact_bucket),
            "outcome": match uploaded { ArtifactOutcome::Uploaded { .. } => "uploaded", ArtifactOutcome::Unchanged { .. } => "unchanged" },
        },
        "stack": stack,
        "stackset": {"name": a.stackset_name, "outcome": outcome, "instances": instances},
        "changed": stack["outcome"] != "unchanged" || outcome != "unchanged",
    })
}

/// The report as lines for a person.
fn text(r: &Value) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "lambda zip {}: {}\n",
        r["lambda"]["uri"].as_str().unwrap_or_default(),
        r["lambda"]["outcome"].as_str().unwrap_or_default()
    ));
    let stack = &r["stack"];
    s.push_str(&format!(
        "stack {}: {}\n",
        stack["name"].as_str().unwrap_or_default(),
        stack["outcome"].as_str().unwrap_or_default()
    ));
    for c in stack["changes"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {} {} ({}){}\n",
            c["action"].as_str().unwrap_or_default(),
            c["logical_id"].as_str().unwrap_or_default(),
            c["resource_type"].as_str().unwrap_or_default(),
            match c["replacement"].as_str() {
                Some("True") => ", replaced",
                _ => "",
            }
        ));
    }
    let set = &r["stackset"];
    let instances = set["instances"].as_array().map_or(0, Vec::len);
    s.push_str(&format!(
        "stack set {}: {} ({instances} stack instances)\n",
        set["name"].as_str().unwrap_or_default(),
        set["outcome"].as_str().unwrap_or_default(),
    ));
    for i in set["instances"].as_array().into_iter().flatten() {
        if i["status"] != "CURRENT" {
            s.push_str(&format!(
                "  {} {}: {} {}\n",
                i["account"].as_str().unwrap_or_default(),
                i["region"].as_str().unwrap_or_default(),
                i["status"].as_str().unwrap_or_default(),
                i["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    if r["changed"] == false {
        s.push_str("no change: the deployed stack and stack set are what these runbooks make\n");
    }
    s
}
