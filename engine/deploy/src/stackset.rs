//! A `SERVICE_MANAGED` StackSet deployed to organizational units.

use std::collections::{BTreeMap, BTreeSet};

use orgop_aws::{AwsClient, Target};
use serde_json::{Value, json};

use crate::wait::{Backoff, poll_until};
use crate::{DeployError, DeployOptions, parameter_list, parameters_match};

/// Whose StackSet it is (`CallAs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallAs {
    /// The organization's management account (`SELF`).
    #[default]
    SelfAccount,
    /// A delegated administrator of CloudFormation StackSets (`DELEGATED_ADMIN`).
    DelegatedAdmin,
}

impl CallAs {
    fn wire(self) -> &'static str {
        match self {
            CallAs::SelfAccount => "SELF",
            CallAs::DelegatedAdmin => "DELEGATED_ADMIN",
        }
    }
}

/// How a StackSet operation rolls out (`OperationPreferences`). The default: every region
/// at once, all accounts at once, 10 % of them may fail without stopping the rest
/// (`SOFT_FAILURE_TOLERANCE`); a failed instance is an error of the deployment anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationPreferences {
    /// `PARALLEL` or `SEQUENTIAL`.
    pub region_concurrency_type: String,
    /// Percentage of accounts per region deployed at once (1-100).
    pub max_concurrent_percentage: u8,
    /// Percentage of accounts per region that may fail before the operation stops (0-100).
    pub failure_tolerance_percentage: u8,
    /// `STRICT_FAILURE_TOLERANCE` or `SOFT_FAILURE_TOLERANCE`.
    pub concurrency_mode: String,
}

impl Default for OperationPreferences {
    fn default() -> Self {
        OperationPreferences {
            region_concurrency_type: "PARALLEL".into(),
            max_concurrent_percentage: 100,
            failure_tolerance_percentage: 10,
            concurrency_mode: "SOFT_FAILURE_TOLERANCE".into(),
        }
    }
}

impl OperationPreferences {
    fn wire(&self) -> Value {
        json!({
            "RegionConcurrencyType": self.region_concurrency_type,
            "MaxConcurrentPercentage": self.max_concurrent_percentage,
            "FailureTolerancePercentage": self.failure_tolerance_percentage,
            "ConcurrencyMode": self.concurrency_mode,
        })
    }
}

/// A StackSet to deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSetSpec {
    /// The StackSet name (`[a-zA-Z][-a-zA-Z0-9]*`).
    pub name: String,
    /// The template, compared byte for byte with the deployed one.
    pub template_body: String,
    /// Where the same template was uploaded, sent instead of the body (over 51,200 bytes).
    pub template_url: Option<String>,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// `CAPABILITY_NAMED_IAM`, ...
    pub capabilities: Vec<String>,
    /// The OUs (or the root, `r-...`) whose accounts get a stack instance; accounts that join
    /// them later get one automatically.
    pub organizational_units: Vec<String>,
    /// The regions of the instances.
    pub regions: Vec<String>,
    /// Whose StackSet it is.
    pub call_as: CallAs,
    /// How operations roll out.
    pub preferences: OperationPreferences,
}

/// One stack instance, as ListStackInstances answers it after the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInstance {
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The OU it was deployed through, when the service says.
    pub organizational_unit: Option<String>,
    /// `CURRENT`, `OUTDATED` or `INOPERABLE`.
    pub status: String,
    /// `SUCCEEDED`, `FAILED`, `PENDING`, ... (`StackInstanceStatus.DetailedStatus`).
    pub detailed_status: Option<String>,
    /// Why, when it is not current.
    pub status_reason: Option<String>,
}

/// What [`deploy_stackset`] did. Each carries the StackSet's instances afterwards and the
/// ids of the operations it ran (waited for, all succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackSetOutcome {
    /// The StackSet did not exist: created, with its instances.
    Created {
        /// Stack instances after the deployment.
        instances: Vec<StackInstance>,
        /// Operation ids.
        operations: Vec<String>,
    },
    /// The template or parameters changed (every instance updated), and/or instances were
    /// created in (OU, region) pairs that had none.
    Updated {
        /// Whether the template or parameters changed.
        template_updated: bool,
        /// Stack instances after the deployment.
        instances: Vec<StackInstance>,
        /// Operation ids.
        operations: Vec<String>,
    },
    /// Same template and parameters, and every (OU, region) has instances: nothing sent.
    Unchanged {
        /// Stack instances.
        instances: Vec<StackInstance>,
    },
}

/// Deploys `spec` from `region` (the StackSet's administration region) with
/// [`DeployOptions::default`].
pub async fn deploy_stackset(
    client: &AwsClient,
    region: &str,
    spec: &StackSetSpec,
) -> Result<StackSetOutcome, DeployError> {
    deploy_stackset_with(client, region, spec, &DeployOptions::default()).await
}

/// Deploys `spec` from `region`: DescribeStackSet; when absent, CreateStackSet
/// (`SERVICE_MANAGED`, automatic deployment on, stacks of accounts that leave are deleted);
/// when its template and parameters differ, UpdateStackSet (every instance); then
/// CreateStackInstances to the spec's OUs in the regions where an OU has no instance yet.
/// Every operation is polled until it ends (bounded by `opts.operation_timeout`); one that
/// fails, or leaves a failed instance, is [`DeployError::StackSetOperationFailed`] with the
/// per-account reasons. Instances outside the spec are never deleted.
pub async fn deploy_stackset_with(
    client: &AwsClient,
    region: &str,
    spec: &StackSetSpec,
    opts: &DeployOptions,
) -> Result<StackSetOutcome, DeployError> {
    let ctx = Ctx {
        client,
        target: Target::own(region),
        spec,
        opts,
    };
    let mut operations = Vec::new();
    let existing = ctx.describe().await?;
    let created = existing.is_none();
    let mut template_updated = false;
    match existing {
        None => ctx.create().await?,
        Some(set) => {
            let same_template =
                set.get("TemplateBody").and_then(Value::as_str) == Some(&spec.template_body);
            let empty = json!([]);
            let same_params = parameters_match(
                set.get("Parameters").unwrap_or(&empty),
                &spec.parameters,
                &spec.template_body,
            );
            if !(same_template && same_params) {
                let op = ctx.update().await?;
                ctx.wait_operation(&op).await?;
                operations.push(op);
                template_updated = true;
            }
        }
    }
    let before = ctx.instances().await?;
    let (ous, regions) = missing_targets(&before, &spec.organizational_units, &spec.regions);
    if !ous.is_empty() {
        let op = ctx.create_instances(&ous, &regions).await?;
        ctx.wait_operation(&op).await?;
        operations.push(op);
    }
    let instances = if operations.is_empty() {
        before
    } else {
        ctx.instances().await?
    };
    Ok(if created {
        StackSetOutcome::Created {
            instances,
            operations,
        }
    } else if operations.is_empty() {
        StackSetOutcome::Unchanged { instances }
    } else {
        StackSetOutcome::Updated {
            template_updated,
            instances,
            operations,
        }
    })
}

/// The OUs and regions to create instances in: those (OU, region) pairs of the spec that
/// have no instance yet. An instance whose OU the service does not name counts for every OU
/// of its region. One CreateStackInstances call covers them all (instances that exist
/// already are left as they are).
fn missing_targets(
    instances: &[StackInstance],
    ous: &[String],
    regions: &[String],
) -> (Vec<String>, Vec<String>) {
    let covered = |ou: &str, region: &str| {
        instances
            .iter()
            .any(|i| i.region == region && i.organizational_unit.as_deref().is_none_or(|o| o == ou))
    };
    let mut want_ous = BTreeSet::new();
    let mut want_regions = BTreeSet::new();
    for ou in ous {
        for region in regions {
            if !covered(ou, region) {
                want_ous.insert(ou.clone());
                want_regions.insert(region.clone());
            }
        }
    }
    (
        ous.iter()
            .filter(|o| want_ous.contains(*o))
            .cloned()
            .collect(),
        regions
            .iter()
            .filter(|r| want_regions.contains(*r))
            .cloned()
            .collect(),
    )
}

struct Ctx<'a> {
    client: &'a AwsClient,
    target: Target,
    spec: &'a StackSetSpec,
    opts: &'a DeployOptions,
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn call(&self, operation: &'static str, mut params: Value) -> Result<Value, DeployError> {
        params["StackSetName"] = json!(self.spec.name);
        params["CallAs"] = json!(self.spec.call_as.wire());
        self.client
            .call(&self.target, "cloudformation", operation, params)
            .await
            .map_err(|e| DeployError::call(self.name(), operation, e))
    }

    fn with_template(&self, mut params: Value) -> Value {
        match &self.spec.template_url {
            Some(url) => params["TemplateURL"] = json!(url),
            None => params["TemplateBody"] = json!(self.spec.template_body),
        }
        params
    }

    async fn describe(&self) -> Result<Option<Value>, DeployError> {
        match self.call("DescribeStackSet", json!({})).await {
            Ok(out) => Ok(out.get("StackSet").cloned()),
            Err(DeployError::Call { source, .. })
                if source
                    .aws_error()
                    .is_some_and(|a| a.code == "StackSetNotFoundException") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn create(&self) -> Result<(), DeployError> {
        let params = self.with_template(json!({
            "Description": "orgop deploy",
            "Parameters": parameter_list(&self.spec.parameters),
            "Capabilities": self.spec.capabilities,
            "PermissionModel": "SERVICE_MANAGED",
            "AutoDeployment": {"Enabled": true, "RetainStacksOnAccountRemoval": false},
        }));
        self.call("CreateStackSet", params).await.map(|_| ())
    }

    async fn update(&self) -> Result<String, DeployError> {
        let params = self.with_template(json!({
            "Parameters": parameter_list(&self.spec.parameters),
            "Capabilities": self.spec.capabilities,
            "AutoDeployment": {"Enabled": true, "RetainStacksOnAccountRemoval": false},
            "OperationPreferences": self.spec.preferences.wire(),
        }));
        let out = self.call("UpdateStackSet", params).await?;
        self.operation_id(&out, "UpdateStackSet")
    }

    async fn create_instances(
        &self,
        ous: &[String],
        regions: &[String],
    ) -> Result<String, DeployError> {
        let out = self
            .call(
                "CreateStackInstances",
                json!({
                    "DeploymentTargets": {"OrganizationalUnitIds": ous},
                    "Regions": regions,
                    "OperationPreferences": self.spec.preferences.wire(),
                }),
            )
            .await?;
        self.operation_id(&out, "CreateStackInstances")
    }

    fn operation_id(&self, out: &Value, operation: &'static str) -> Result<String, DeployError> {
        out.get("OperationId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| DeployError::Unexpected {
                name: self.name().to_string(),
                operation,
                missing: "an operation id",
            })
    }

    /// Polls the operation until it ends; an operation that did not succeed, or any
    /// instance result that failed, is an error with the per-account reasons.
    async fn wait_operation(&self, id: &str) -> Result<(), DeployError> {
        let waiting_for = format!("operation {id} of stack set {}", self.name());
        let backoff = Backoff::new(self.opts.poll_initial, self.opts.poll_max);
        let op = poll_until(
            &waiting_for,
            "operation_timeout",
            self.opts.operation_timeout,
            backoff,
            || async {
                let out = self
                    .call("DescribeStackSetOperation", json!({"OperationId": id}))
                    .await?;
                let op = out.get("StackSetOperation").cloned().unwrap_or_default();
                let status = op.get("Status").and_then(Value::as_str).unwrap_or_default();
                Ok(matches!(status, "SUCCEEDED" | "FAILED" | "STOPPED").then_some(op))
            },
        )
        .await?;
        let status = op
            .get("Status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let results = self
            .client
            .paginate_all(
                &self.target,
                "cloudformation",
                "ListStackSetOperationResults",
                json!({"StackSetName": self.spec.name, "OperationId": id, "CallAs": self.spec.call_as.wire()}),
            )
            .await
            .map_err(|e| DeployError::call(self.name(), "ListStackSetOperationResults", e))?;
        let reasons = operation_failures(&results);
        if status == "SUCCEEDED" && reasons.is_empty() {
            return Ok(());
        }
        Err(DeployError::StackSetOperationFailed {
            stack_set: self.name().to_string(),
            operation_id: id.to_string(),
            action: op
                .get("Action")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            status,
            reasons,
        })
    }

    async fn instances(&self) -> Result<Vec<StackInstance>, DeployError> {
        let out = self
            .client
            .paginate_all(
                &self.target,
                "cloudformation",
                "ListStackInstances",
                json!({"StackSetName": self.spec.name, "CallAs": self.spec.call_as.wire()}),
            )
            .await
            .map_err(|e| DeployError::call(self.name(), "ListStackInstances", e))?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let mut instances: Vec<StackInstance> = out
            .get("Summaries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| StackInstance {
                account: text(s, "Account").unwrap_or_default(),
                region: text(s, "Region").unwrap_or_default(),
                organizational_unit: text(s, "OrganizationalUnitId"),
                status: text(s, "Status").unwrap_or_default(),
                detailed_status: s
                    .get("StackInstanceStatus")
                    .and_then(|d| text(d, "DetailedStatus")),
                status_reason: text(s, "StatusReason"),
            })
            .collect();
        instances.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        Ok(instances)
    }
}

/// `account region STATUS: reason` of each result of ListStackSetOperationResults that did
/// not succeed (`FAILED`, `CANCELLED`, ...).
fn operation_failures(results: &Value) -> Vec<String> {
    results
        .get("Summaries")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            !matches!(
                r.get("Status").and_then(Value::as_str),
                Some("SUCCEEDED" | "PENDING" | "RUNNING")
            )
        })
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
            let reason = match s("StatusReason") {
                "" => "no reason given",
                r => r,
            };
            format!("{} {} {}: {reason}", s("Account"), s("Region"), s("Status"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(account: &str, region: &str, ou: Option<&str>) -> StackInstance {
        StackInstance {
            account: account.into(),
            region: region.into(),
            organizational_unit: ou.map(str::to_string),
            status: "CURRENT".into(),
            detailed_status: None,
            status_reason: None,
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_ou_region_pairs_without_instances_are_targeted() {
        let ous = v(&["ou-a", "ou-b"]);
        let regions = v(&["us-east-1", "eu-west-1"]);
        let none = missing_targets(&[], &ous, &regions);
        assert_eq!(none, (ous.clone(), regions.clone()));
        let some = [
            inst("1", "us-east-1", Some("ou-a")),
            inst("2", "us-east-1", Some("ou-b")),
            inst("1", "eu-west-1", Some("ou-a")),
        ];
        assert_eq!(
            missing_targets(&some, &ous, &regions),
            (v(&["ou-b"]), v(&["eu-west-1"]))
        );
        let all = [
            inst("1", "us-east-1", Some("ou-a")),
            inst("2", "us-east-1", Some("ou-b")),
            inst("1", "eu-west-1", Some("ou-a")),
            inst("2", "eu-west-1", Some("ou-b")),
        ];
        assert_eq!(missing_targets(&all, &ous, &regions), (vec![], vec![]));
        // A service that does not name the OU (moto): any instance covers its region.
        let unnamed = [inst("1", "us-east-1", None)];
        assert_eq!(
            missing_targets(&unnamed, &ous, &regions),
            (ous.clone(), v(&["eu-west-1"]))
        );
    }

    #[test]
    fn failed_results_are_reported_per_account() {
        let results = json!({"Summaries": [
            {"Account": "111111111111", "Region": "us-east-1", "Status": "SUCCEEDED"},
            {"Account": "222222222222", "Region": "us-east-1", "Status": "FAILED", "StatusReason": "Role OrgOp already exists"},
            {"Account": "333333333333", "Region": "eu-west-1", "Status": "CANCELLED"},
        ]});
        assert_eq!(
            operation_failures(&results),
            [
                "222222222222 us-east-1 FAILED: Role OrgOp already exists",
                "333333333333 eu-west-1 CANCELLED: no reason given",
            ]
        );
    }
}
