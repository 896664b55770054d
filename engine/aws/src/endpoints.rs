//! Endpoint resolution: from a service model's metadata and a region to a URL and the
//! signing scope, from botocore's `endpoints.json` (partitions, regions, per-service
//! endpoints) embedded in the bundle.
//!
//! Guarantees: global services (iam, organizations, cloudfront, route53, account, ...) resolve
//! to their partition endpoint and sign for its credential-scope region whatever region was
//! asked for; a region resolves in its own partition (`cn-north-1` → `amazonaws.com.cn`,
//! `us-gov-west-1` → aws-us-gov); an override — an explicit URL, else
//! `AWS_ENDPOINT_URL_<SERVICE_ID>`, else `AWS_ENDPOINT_URL`, as every AWS SDK reads them — wins
//! over the data and makes S3 use path-style addressing.

use std::collections::HashMap;
use std::sync::OnceLock;

use orgop_awswire::Metadata;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
struct EndpointsDoc {
    partitions: Vec<Partition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Partition {
    partition: String,
    dns_suffix: String,
    region_regex: String,
    #[serde(default)]
    defaults: Value,
    #[serde(default)]
    regions: HashMap<String, Value>,
    /// Each service's block stays unparsed text until first asked for: the bundle holds
    /// hundreds of services and a process talks to a handful (parsing them all cost ~7 MB).
    #[serde(default)]
    services: HashMap<String, LazyService>,
}

/// One service's block of `endpoints.json`, parsed on first use.
#[derive(Debug)]
struct LazyService {
    raw: Box<RawValue>,
    parsed: OnceLock<ServiceEndpoints>,
}

impl<'de> Deserialize<'de> for LazyService {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LazyService {
            raw: Box::<RawValue>::deserialize(d)?,
            parsed: OnceLock::new(),
        })
    }
}

impl LazyService {
    fn get(&self) -> &ServiceEndpoints {
        self.parsed.get_or_init(|| {
            serde_json::from_str(self.raw.get()).expect("bundled endpoints.json service parses")
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceEndpoints {
    #[serde(default)]
    defaults: Value,
    #[serde(default)]
    endpoints: HashMap<String, Value>,
    #[serde(default = "yes")]
    is_regionalized: bool,
    #[serde(default)]
    partition_endpoint: Option<String>,
}

fn yes() -> bool {
    true
}

fn endpoints() -> &'static EndpointsDoc {
    static DOC: OnceLock<EndpointsDoc> = OnceLock::new();
    DOC.get_or_init(|| {
        let raw = orgop_models::bundled_endpoints_json().expect("bundled endpoints.json.gz");
        serde_json::from_slice(&raw).expect("bundled endpoints.json parses")
    })
}

/// Where to send a request and how to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, host, optional port and optional base path, without a trailing slash
    /// (`https://ec2.us-east-1.amazonaws.com`, `http://127.0.0.1:5000`).
    pub url: String,
    /// The region to put in the signature's credential scope.
    pub signing_region: String,
    /// The service name to put in the signature's credential scope.
    pub signing_name: String,
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// True when the URL came from an override (S3 then uses path-style addressing).
    pub overridden: bool,
}

/// The partition a region belongs to (`aws` when none claims it).
pub fn partition_of(region: &str) -> &'static str {
    find_partition(region).partition.as_str()
}

fn find_partition(region: &str) -> &'static Partition {
    let doc = endpoints();
    doc.partitions
        .iter()
        .find(|p| p.regions.contains_key(region))
        .or_else(|| {
            doc.partitions
                .iter()
                .find(|p| regex_lite_match(&p.region_regex, region))
        })
        .unwrap_or(&doc.partitions[0])
}

/// Matches botocore's region regexes, which are all of the form
/// `^(a|b|c)\-\w+\-\d+$` or `^prefix\-\w+\-\d+$`: a fixed prefix alternative, then
/// `-<word>-<digits>`.
fn regex_lite_match(re: &str, region: &str) -> bool {
    let body = re.trim_start_matches('^').trim_end_matches('$');
    let Some(rest_at) = body.find("\\-\\w+\\-\\d+") else {
        return false;
    };
    let head = &body[..rest_at];
    let alts: Vec<String> = head
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split('|')
        .map(|a| a.replace("\\-", "-"))
        .collect();
    alts.iter().any(|a| {
        region
            .strip_prefix(a.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(word, digits)| {
                !word.is_empty()
                    && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !digits.is_empty()
                    && digits.chars().all(|c| c.is_ascii_digit())
            })
    })
}

/// Why no endpoint could be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} has no {variant} endpoint in {region}")]
pub struct EndpointError {
    /// The service's endpoint prefix.
    pub service: String,
    /// The region asked for.
    pub region: String,
    /// The variant asked for (`FIPS`, `dual-stack`, `FIPS dual-stack`).
    pub variant: String,
}

/// Endpoint settings: overrides, in precedence order after an explicit URL, and the FIPS and
/// dual-stack variants.
#[derive(Debug, Clone, Default)]
pub struct EndpointOverrides {
    /// An explicit URL for every service (`--endpoint-url`).
    pub endpoint_url: Option<String>,
    /// Per-service URLs from the environment, keyed by the upper-cased service id with
    /// spaces as underscores (`AWS_ENDPOINT_URL_<KEY>`).
    pub per_service: HashMap<String, String>,
    /// `AWS_ENDPOINT_URL`.
    pub global: Option<String>,
    /// Use FIPS endpoints (`AWS_USE_FIPS_ENDPOINT=true`).
    pub use_fips: bool,
    /// Use dual-stack (IPv6) endpoints (`AWS_USE_DUALSTACK_ENDPOINT=true`).
    pub use_dualstack: bool,
}

impl EndpointOverrides {
    /// Reads `AWS_ENDPOINT_URL` and every `AWS_ENDPOINT_URL_<SERVICE>` from the environment,
    /// unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true, and `AWS_USE_FIPS_ENDPOINT` and
    /// `AWS_USE_DUALSTACK_ENDPOINT`.
    pub fn from_env() -> EndpointOverrides {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let mut o = EndpointOverrides {
            use_fips: flag("AWS_USE_FIPS_ENDPOINT"),
            use_dualstack: flag("AWS_USE_DUALSTACK_ENDPOINT"),
            ..EndpointOverrides::default()
        };
        let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        if ignore {
            return o;
        }
        for (k, v) in std::env::vars() {
            if v.is_empty() {
                continue;
            }
            if k == "AWS_ENDPOINT_URL" {
                o.global = Some(v);
            } else if let Some(svc) = k.strip_prefix("AWS_ENDPOINT_URL_") {
                o.per_service.insert(svc.to_string(), v);
            }
        }
        o
    }

    /// The override URL for a service, if any.
    pub fn for_service(&self, metadata: &Metadata) -> Option<&str> {
        if let Some(u) = &self.endpoint_url {
            return Some(u);
        }
        let key = env_key(metadata);
        if let Some(u) = self.per_service.get(&key) {
            return Some(u);
        }
        self.global.as_deref()
    }
}

/// The SDKs' environment key of a service: its `serviceId` upper-cased, spaces and dashes
/// as underscores (`Elastic Load Balancing v2` → `ELASTIC_LOAD_BALANCING_V2`).
pub fn env_key(metadata: &Metadata) -> String {
    let id = metadata
        .service_id
        .as_deref()
        .or(metadata.endpoint_prefix.as_deref())
        .unwrap_or_default();
    id.chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn merge(into: &mut serde_json::Map<String, Value>, from: &Value) {
    if let Value::Object(m) = from {
        for (k, v) in m {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// The variant of `data` (an endpoint entry or a defaults block) whose tags are exactly
/// `tags`.
fn variant<'a>(data: &'a Value, tags: &[&str]) -> Option<&'a serde_json::Map<String, Value>> {
    data.get("variants")?.as_array()?.iter().find_map(|v| {
        let vt: Vec<&str> = v
            .get("tags")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let same = vt.len() == tags.len() && tags.iter().all(|t| vt.contains(t));
        if same { v.as_object() } else { None }
    })
}

/// Resolves the endpoint of a service (by its model metadata) in a region: botocore's
/// `endpoints.json` algorithm, with the FIPS / dual-stack variant when asked for (an error
/// when the service has none there), under any URL override.
pub fn resolve(
    metadata: &Metadata,
    region: &str,
    overrides: &EndpointOverrides,
) -> Result<Endpoint, EndpointError> {
    let prefix = metadata
        .endpoint_prefix
        .clone()
        .unwrap_or_else(|| metadata.signing_name.clone().unwrap_or_default());
    let mut signing_name = metadata
        .signing_name
        .clone()
        .unwrap_or_else(|| prefix.clone());
    let partition = find_partition(region);

    let mut merged = serde_json::Map::new();
    merge(&mut merged, &partition.defaults);
    let mut region_key = region.to_string();
    // Where variants are looked up, most specific first.
    let mut variant_sources: Vec<&Value> = Vec::new();
    if let Some(svc) = partition.services.get(&prefix).map(LazyService::get) {
        merge(&mut merged, &svc.defaults);
        let entry = if let Some(e) = svc.endpoints.get(region) {
            Some(e)
        } else if let (false, Some(pe)) = (svc.is_regionalized, &svc.partition_endpoint) {
            region_key = pe.clone();
            svc.endpoints.get(pe)
        } else {
            None
        };
        if let Some(e) = entry {
            merge(&mut merged, e);
            variant_sources.push(e);
        }
        variant_sources.push(&svc.defaults);
    }
    variant_sources.push(&partition.defaults);
    let mut tags = Vec::new();
    if overrides.use_fips {
        tags.push("fips");
    }
    if overrides.use_dualstack {
        tags.push("dualstack");
    }
    let mut dns_suffix = partition.dns_suffix.clone();
    if !tags.is_empty() && overrides.for_service(metadata).is_none() {
        let mut chosen = serde_json::Map::new();
        for source in variant_sources {
            if let Some(v) = variant(source, &tags) {
                for (k, val) in v {
                    chosen.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
        }
        let Some(hostname) = chosen.get("hostname").cloned() else {
            return Err(EndpointError {
                service: prefix,
                region: region.to_string(),
                variant: match (overrides.use_fips, overrides.use_dualstack) {
                    (true, true) => "FIPS dual-stack",
                    (true, false) => "FIPS",
                    _ => "dual-stack",
                }
                .to_string(),
            });
        };
        merged.insert("hostname".to_string(), hostname);
        if let Some(s) = chosen.get("dnsSuffix").and_then(Value::as_str) {
            dns_suffix = s.to_string();
        }
    }
    let mut signing_region = region.to_string();
    if let Some(scope) = merged.get("credentialScope") {
        if let Some(r) = scope.get("region").and_then(Value::as_str) {
            signing_region = r.to_string();
        }
        if let Some(s) = scope.get("service").and_then(Value::as_str) {
            signing_name = s.to_string();
        }
    }
    let hostname = merged
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or("{service}.{region}.{dnsSuffix}")
        .replace("{service}", &prefix)
        .replace("{region}", &region_key)
        .replace("{dnsSuffix}", &dns_suffix);

    if let Some(url) = overrides.for_service(metadata) {
        return Ok(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            signing_region,
            signing_name,
            partition: partition.partition.clone(),
            overridden: true,
        });
    }
    Ok(Endpoint {
        url: format!("https://{hostname}"),
        signing_region,
        signing_name,
        partition: partition.partition.clone(),
        overridden: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelRegistry;

    fn ep(service: &str, region: &str) -> Endpoint {
        let reg = ModelRegistry::bundled_only();
        let s = reg.service(service).unwrap();
        resolve(s.model.metadata(), region, &EndpointOverrides::default()).unwrap()
    }

    #[test]
    fn every_bundled_service_block_parses() {
        let mut n = 0;
        for p in &endpoints().partitions {
            for (name, svc) in &p.services {
                let parsed: Result<ServiceEndpoints, _> = serde_json::from_str(svc.raw.get());
                assert!(parsed.is_ok(), "{} {name}: {parsed:?}", p.partition);
                n += 1;
            }
        }
        assert!(n > 300, "only {n} service blocks");
    }

    #[test]
    fn regional_services_use_the_region() {
        let e = ep("ec2", "eu-west-1");
        assert_eq!(e.url, "https://ec2.eu-west-1.amazonaws.com");
        assert_eq!(
            (e.signing_region.as_str(), e.signing_name.as_str()),
            ("eu-west-1", "ec2")
        );
        assert_eq!(
            ep("sts", "us-west-2").url,
            "https://sts.us-west-2.amazonaws.com"
        );
        assert_eq!(
            ep("elbv2", "us-east-2").signing_name,
            "elasticloadbalancing"
        );
        assert_eq!(
            ep("stepfunctions", "us-east-1").url,
            "https://states.us-east-1.amazonaws.com"
        );
        // A region the data does not list yet, matched by the partition's regex.
        assert_eq!(
            ep("ec2", "eu-west-9").url,
            "https://ec2.eu-west-9.amazonaws.com"
        );
    }

    #[test]
    fn global_services_use_the_partition_endpoint() {
        for (svc, region, url, scope) in [
            ("iam", "eu-west-1", "https://iam.amazonaws.com", "us-east-1"),
            (
                "organizations",
                "ap-south-1",
                "https://organizations.us-east-1.amazonaws.com",
                "us-east-1",
            ),
            (
                "cloudfront",
                "eu-central-1",
                "https://cloudfront.amazonaws.com",
                "us-east-1",
            ),
            (
                "route53",
                "us-west-2",
                "https://route53.amazonaws.com",
                "us-east-1",
            ),
            (
                "iam",
                "cn-north-1",
                "https://iam.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
            ),
            (
                "iam",
                "us-gov-east-1",
                "https://iam.us-gov.amazonaws.com",
                "us-gov-west-1",
            ),
            (
                "organizations",
                "us-gov-east-1",
                "https://organizations.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
        ] {
            let e = ep(svc, region);
            assert_eq!(
                (e.url.as_str(), e.signing_region.as_str()),
                (url, scope),
                "{svc} {region}"
            );
        }
    }

    #[test]
    fn other_partitions() {
        let e = ep("ec2", "cn-northwest-1");
        assert_eq!(e.url, "https://ec2.cn-northwest-1.amazonaws.com.cn");
        assert_eq!(e.partition, "aws-cn");
        assert_eq!(ep("sts", "us-gov-west-1").partition, "aws-us-gov");
        assert_eq!(partition_of("us-gov-east-1"), "aws-us-gov");
        assert_eq!(partition_of("eu-west-1"), "aws");
    }

    #[test]
    fn overrides_take_precedence_in_sdk_order() {
        let reg = ModelRegistry::bundled_only();
        let elbv2 = reg.service("elbv2").unwrap();
        let md = elbv2.model.metadata();
        assert_eq!(env_key(md), "ELASTIC_LOAD_BALANCING_V2");
        let mut o = EndpointOverrides {
            global: Some("http://global:1".into()),
            ..Default::default()
        };
        assert_eq!(resolve(md, "us-east-1", &o).unwrap().url, "http://global:1");
        o.per_service
            .insert("ELASTIC_LOAD_BALANCING_V2".into(), "http://elb:2/".into());
        let e = resolve(md, "us-east-1", &o).unwrap();
        assert_eq!(e.url, "http://elb:2");
        assert!(e.overridden);
        o.endpoint_url = Some("http://explicit:3".into());
        assert_eq!(
            resolve(md, "us-east-1", &o).unwrap().url,
            "http://explicit:3"
        );
        assert_eq!(
            resolve(md, "us-east-1", &o).unwrap().signing_name,
            "elasticloadbalancing"
        );
    }
}
