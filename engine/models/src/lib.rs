//! AWS's service models: the embedded botocore bundle plus any directories in botocore's
//! layout. Pure data, no network: shared by the client (`orgop-aws`), which sends calls, and
//! the checker (`orgop-check`), which type-checks runbooks against the same models.
//!
//! Guarantees: a service's model is decompressed and parsed at most once per process, on
//! first use ([`ModelRegistry::service`]); a service named the way IAM names actions
//! (`elasticloadbalancing`, `states`, `tag`) or the way botocore does (`elbv2`,
//! `stepfunctions`, `sfn`) resolves to the same model; an unknown service or operation is an
//! [`UnknownName`] carrying the close matches, found without any network traffic. Directories
//! added with [`ModelRegistry::add_dir`] (or listed in `ORGOP_MODELS_DIR`) take precedence over
//! the bundle, newest directory first, like botocore's data path.
#![deny(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use orgop_awswire::{Operation, Paginators, ServiceModel, UnknownName, Waiters, apply_sdk_extras};

mod bundled;

/// The environment variable naming extra model directories (a path list, like `PATH`).
pub const MODELS_DIR_ENV: &str = "ORGOP_MODELS_DIR";

/// One loaded service: its model and, when botocore has them, paginators and waiters.
#[derive(Debug)]
pub struct Service {
    /// botocore's name of the service (`ec2`, `elbv2`, `stepfunctions`).
    pub name: String,
    /// The API version the model describes (`2016-11-15`).
    pub api_version: String,
    /// The parsed `service-2.json`.
    pub model: ServiceModel,
    /// The parsed `paginators-1.json` (empty when the service has none).
    pub paginators: Paginators,
    /// The parsed `waiters-2.json` (empty when the service has none).
    pub waiters: Waiters,
}

impl Service {
    /// An operation by exact name, or the close matches.
    pub fn operation(&self, name: &str) -> Result<&Operation, UnknownName> {
        self.model.operation(name)
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No bundled or added service has this name.
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    /// The operation is not in the service's model.
    #[error("{service}: {source}")]
    UnknownOperation {
        /// The botocore service name.
        service: String,
        /// The unknown operation with close matches.
        source: UnknownName,
    },
    /// A model file could not be read or parsed.
    #[error("model of `{service}` ({path}): {source}")]
    Invalid {
        /// The botocore service name.
        service: String,
        /// Where the model came from (`bundled` or a file path).
        path: String,
        /// What is wrong.
        source: Arc<ModelFileError>,
    },
}

/// Why a service's model files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// Neither a models directory nor the bundle has the service.
    #[error("no model for `{0}`")]
    Missing(String),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A `.json.gz` file (or the bundle) is not valid gzip.
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    /// `<stem>.sdk-extras.json` could not be merged into its document.
    #[error("{stem}.sdk-extras: {source}")]
    Extras {
        /// The document's stem (`service-2`).
        stem: String,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// `service-2.json` is not a valid model.
    #[error(transparent)]
    Model(#[from] orgop_awswire::ModelError),
    /// `paginators-1.json` is not valid.
    #[error(transparent)]
    Paginators(#[from] orgop_awswire::PaginatorError),
    /// `waiters-2.json` is not valid.
    #[error(transparent)]
    Waiters(#[from] orgop_awswire::WaiterError),
}

/// IAM action prefixes (and other common spellings) that differ from botocore's service
/// names, each with its candidate botocore services in order of preference. A call resolves
/// to the first candidate whose model has the operation.
const ALIASES: &[(&str, &[&str])] = &[
    ("elasticloadbalancing", &["elbv2", "elb"]),
    ("elasticloadbalancingv2", &["elbv2"]),
    ("states", &["stepfunctions"]),
    ("sfn", &["stepfunctions"]),
    ("tag", &["resourcegroupstaggingapi"]),
    ("apigateway", &["apigateway", "apigatewayv2"]),
    ("monitoring", &["cloudwatch"]),
    ("email", &["ses", "sesv2"]),
    ("ses", &["ses", "sesv2"]),
    ("elasticfilesystem", &["efs"]),
    ("elasticmapreduce", &["emr"]),
    ("es", &["es", "opensearch"]),
    ("access-analyzer", &["accessanalyzer"]),
    ("servicequotas", &["service-quotas"]),
    ("cloudwatchlogs", &["logs"]),
    ("cognito-identity", &["cognito-identity"]),
    ("application-autoscaling", &["application-autoscaling"]),
    ("route53domains", &["route53domains"]),
    ("sso", &["sso-admin", "sso"]),
    ("identitystore", &["identitystore"]),
    ("resource-groups", &["resource-groups"]),
    ("ram", &["ram"]),
];

#[derive(Default)]
struct Slot {
    cell: OnceLock<Result<Arc<Service>, Arc<ModelFileError>>>,
}

/// Where the models come from; cheap to share (`Arc` inside), safe to use from many tasks.
#[derive(Clone, Default)]
pub struct ModelRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    dirs: RwLock<Vec<PathBuf>>,
    loaded: Mutex<HashMap<String, Arc<Slot>>>,
}

fn bundled_services() -> impl Iterator<Item = &'static bundled::Bundled> {
    bundled::SERVICES.iter()
}

/// The process-wide registry of bundled models (plus `ORGOP_MODELS_DIR`), shared by every
/// client that does not bring its own.
pub fn global() -> &'static ModelRegistry {
    static GLOBAL: OnceLock<ModelRegistry> = OnceLock::new();
    GLOBAL.get_or_init(ModelRegistry::from_env)
}

impl ModelRegistry {
    /// The bundle alone.
    pub fn bundled_only() -> ModelRegistry {
        ModelRegistry::default()
    }

    /// The bundle plus every directory listed in `ORGOP_MODELS_DIR`.
    pub fn from_env() -> ModelRegistry {
        let reg = ModelRegistry::default();
        if let Some(list) = std::env::var_os(MODELS_DIR_ENV) {
            for dir in std::env::split_paths(&list) {
                if !dir.as_os_str().is_empty() {
                    reg.add_dir(dir);
                }
            }
        }
        reg
    }

    /// Adds a directory in botocore's data layout (`<dir>/<service>/<api-version>/service-2.json`
    /// or `.json.gz`, optional `paginators-1`, `waiters-2` and `*.sdk-extras.json`). It takes
    /// precedence over the bundle and over directories added before it, for services not yet
    /// loaded.
    pub fn add_dir(&self, dir: impl Into<PathBuf>) {
        let mut dirs = self.inner.dirs.write().unwrap_or_else(|e| e.into_inner());
        dirs.insert(0, dir.into());
    }

    /// The botocore release the bundle was made from.
    pub fn bundled_botocore_version() -> &'static str {
        bundled::BOTOCORE_VERSION
    }

    /// Every service name this registry can load (botocore names), sorted.
    pub fn service_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = bundled_services().map(|b| b.0.to_string()).collect();
        for dir in self.dirs() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.path().is_dir()
                        && let Some(n) = e.file_name().to_str()
                        && latest_version_dir(&e.path()).is_some()
                    {
                        names.insert(n.to_string());
                    }
                }
            }
        }
        names.into_iter().collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.inner
            .dirs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn has(&self, name: &str) -> bool {
        bundled_services().any(|b| b.0 == name)
            || self
                .dirs()
                .iter()
                .any(|d| latest_version_dir(&d.join(name)).is_some())
    }

    /// The botocore service names a name given by a runbook author may mean, best first:
    /// the name itself when it is a service, then the alias table's candidates.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        let lower = name.to_ascii_lowercase();
        let mut out = Vec::new();
        if self.has(&lower) {
            out.push(lower.clone());
        }
        if let Some((_, targets)) = ALIASES.iter().find(|(a, _)| *a == lower) {
            for t in *targets {
                if self.has(t) && !out.iter().any(|o| o == t) {
                    out.push((*t).to_string());
                }
            }
        }
        out
    }

    /// The unknown-service error for `name`, with close matches among services and aliases.
    fn unknown_service(&self, name: &str) -> UnknownName {
        let names = self.service_names();
        let known = names
            .iter()
            .map(String::as_str)
            .chain(ALIASES.iter().map(|(a, _)| *a));
        UnknownName::new("service", name, known)
    }

    /// A service by botocore name or alias (the first candidate), loading it on first use.
    pub fn service(&self, name: &str) -> Result<Arc<Service>, LoadError> {
        let candidates = self.candidates(name);
        match candidates.first() {
            Some(c) => self.load(c),
            None => Err(self.unknown_service(name).into()),
        }
    }

    /// Resolves `service:Operation` as a runbook names it: the first candidate service whose
    /// model has the operation, or the unknown-operation error of the first candidate.
    pub fn resolve(&self, service: &str, operation: &str) -> Result<Arc<Service>, LoadError> {
        let candidates = self.candidates(service);
        if candidates.is_empty() {
            return Err(self.unknown_service(service).into());
        }
        let mut first_err = None;
        for c in &candidates {
            let svc = self.load(c)?;
            match svc.operation(operation) {
                Ok(_) => return Ok(svc),
                Err(e) => {
                    first_err.get_or_insert(LoadError::UnknownOperation {
                        service: svc.name.clone(),
                        source: e,
                    });
                }
            }
        }
        Err(first_err.expect("at least one candidate"))
    }

    fn load(&self, name: &str) -> Result<Arc<Service>, LoadError> {
        let slot = {
            let mut loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
            loaded.entry(name.to_string()).or_default().clone()
        };
        let result = slot.cell.get_or_init(|| self.load_uncached(name));
        match result {
            Ok(s) => Ok(s.clone()),
            Err(source) => Err(LoadError::Invalid {
                service: name.to_string(),
                path: self.source_of(name),
                source: source.clone(),
            }),
        }
    }

    fn source_of(&self, name: &str) -> String {
        for dir in self.dirs() {
            if let Some(v) = latest_version_dir(&dir.join(name)) {
                return v.display().to_string();
            }
        }
        "bundled".to_string()
    }

    fn load_uncached(&self, name: &str) -> Result<Arc<Service>, Arc<ModelFileError>> {
        self.load_files(name).map(Arc::new).map_err(Arc::new)
    }

    fn load_files(&self, name: &str) -> Result<Service, ModelFileError> {
        for dir in self.dirs() {
            if let Some(vdir) = latest_version_dir(&dir.join(name)) {
                return load_from_dir(name, &vdir);
            }
        }
        let b = bundled_services()
            .find(|b| b.0 == name)
            .ok_or_else(|| ModelFileError::Missing(name.to_string()))?;
        let model = ServiceModel::from_json_vec(gunzip(b.2)?)?;
        let paginators = match b.3 {
            Some(p) => Paginators::from_json(&gunzip(p)?)?,
            None => Paginators::from_json(b"{}")?,
        };
        let waiters = match b.4 {
            Some(w) => Waiters::from_json(&gunzip(w)?)?,
            None => Waiters::from_json(b"{}")?,
        };
        Ok(Service {
            name: name.to_string(),
            api_version: b.1.to_string(),
            model,
            paginators,
            waiters,
        })
    }
}

/// botocore's `endpoints.json` as bundled (partitions, regions, per-service endpoints).
pub fn bundled_endpoints_json() -> Result<Vec<u8>, ModelFileError> {
    gunzip(bundled::ENDPOINTS)
}

/// Decompresses a gzip member.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ModelFileError> {
    // The gzip trailer ends with the uncompressed size (mod 2^32): allocate exactly that,
    // not a doubling buffer up to twice the size, since the text may be kept.
    let size = match bytes.len().checked_sub(4).map(|at| &bytes[at..]) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    let mut out = Vec::with_capacity(size.min(64 << 20) + 1);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(ModelFileError::Gzip)?;
    Ok(out)
}

/// The newest `<api-version>` directory under a service directory that holds a
/// `service-2.json[.gz]`.
fn latest_version_dir(service_dir: &Path) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(service_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| read_doc(p, "service-2").is_some_and(|r| r.is_ok()))
        .collect();
    versions.sort();
    versions.pop()
}

/// Reads `<dir>/<stem>.json` or `<dir>/<stem>.json.gz`; None when neither exists.
fn read_doc(dir: &Path, stem: &str) -> Option<Result<Vec<u8>, ModelFileError>> {
    let read = |path: PathBuf| {
        std::fs::read(&path).map_err(|source| ModelFileError::Read { path, source })
    };
    let plain = dir.join(format!("{stem}.json"));
    if plain.is_file() {
        return Some(read(plain));
    }
    let gz = dir.join(format!("{stem}.json.gz"));
    if gz.is_file() {
        return Some(read(gz).and_then(|b| gunzip(&b)));
    }
    None
}

/// Reads a document with its `*.sdk-extras.json` merged in, if present.
fn read_with_extras(dir: &Path, stem: &str) -> Result<Option<Vec<u8>>, ModelFileError> {
    let Some(doc) = read_doc(dir, stem) else {
        return Ok(None);
    };
    let doc = doc?;
    match read_doc(dir, &format!("{stem}.sdk-extras")) {
        Some(extras) => apply_sdk_extras(&doc, &extras?)
            .map(Some)
            .map_err(|source| ModelFileError::Extras {
                stem: stem.to_string(),
                source,
            }),
        None => Ok(Some(doc)),
    }
}

fn load_from_dir(name: &str, vdir: &Path) -> Result<Service, ModelFileError> {
    let service = read_with_extras(vdir, "service-2")?
        .ok_or_else(|| ModelFileError::Missing(name.to_string()))?;
    let model = ServiceModel::from_json_vec(service)?;
    let paginators = Paginators::from_json(
        &read_with_extras(vdir, "paginators-1")?.unwrap_or_else(|| b"{}".to_vec()),
    )?;
    let waiters = Waiters::from_json(
        &read_with_extras(vdir, "waiters-2")?.unwrap_or_else(|| b"{}".to_vec()),
    )?;
    Ok(Service {
        name: name.to_string(),
        api_version: vdir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string(),
        model,
        paginators,
        waiters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_service_loads() {
        let reg = ModelRegistry::bundled_only();
        for name in reg.service_names() {
            let s = reg.service(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(s.model.operation_names().next().is_some(), "{name}");
            s.model.protocol().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn iam_prefixes_resolve_to_botocore_services() {
        let reg = ModelRegistry::bundled_only();
        let cases = [
            ("elasticloadbalancing", "DescribeLoadBalancers", "elbv2"),
            (
                "elasticloadbalancing",
                "DescribeLoadBalancerPolicies",
                "elb",
            ),
            ("states", "ListStateMachines", "stepfunctions"),
            ("sfn", "ListStateMachines", "stepfunctions"),
            ("tag", "GetResources", "resourcegroupstaggingapi"),
            ("apigateway", "GetApis", "apigatewayv2"),
            ("EC2", "DescribeVolumes", "ec2"),
        ];
        for (svc, op, want) in cases {
            let s = reg
                .resolve(svc, op)
                .unwrap_or_else(|e| panic!("{svc}:{op}: {e}"));
            assert_eq!(s.name, want, "{svc}:{op}");
        }
    }

    #[test]
    fn unknown_names_come_with_close_matches() {
        let reg = ModelRegistry::bundled_only();
        let err = reg.resolve("ec3", "DescribeVolumes").unwrap_err();
        match err {
            LoadError::Unknown(u) => assert!(u.suggestions.contains(&"ec2".to_string()), "{u}"),
            other => panic!("{other}"),
        }
        let err = reg.resolve("ec2", "DescribeVolume").unwrap_err();
        match err {
            LoadError::UnknownOperation { source, .. } => {
                assert_eq!(source.suggestions[0], "DescribeVolumes", "{source}")
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_models_dir_adds_and_overrides_services() {
        let tmp = orgop_testkit::TempDir::new("models");
        let dir = tmp.path();
        let vdir = dir.join("demo").join("2020-01-01");
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::write(
            vdir.join("service-2.json"),
            br#"{"metadata":{"protocol":"json","jsonVersion":"1.1","targetPrefix":"Demo",
                "apiVersion":"2020-01-01","endpointPrefix":"demo","serviceId":"Demo"},
                "operations":{"Ping":{"name":"Ping","http":{"method":"POST","requestUri":"/"}}},
                "shapes":{}}"#,
        )
        .unwrap();
        // A newer version, gzipped, with sdk-extras and paginators: botocore's layout as
        // recent releases ship it. The newest version wins.
        let newer = dir.join("demo").join("2021-01-01");
        std::fs::create_dir_all(&newer).unwrap();
        let gz = |bytes: &[u8]| {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        std::fs::write(
            newer.join("service-2.json.gz"),
            gz(
                br#"{"metadata":{"protocol":"json","jsonVersion":"1.1","targetPrefix":"Demo",
                "apiVersion":"2021-01-01","endpointPrefix":"demo","serviceId":"Demo"},
                "operations":{"Ping":{"name":"Ping","http":{"method":"POST","requestUri":"/"}}},
                "shapes":{}}"#,
            ),
        )
        .unwrap();
        std::fs::write(
            newer.join("service-2.sdk-extras.json"),
            br#"{"version":1.0,"merge":{"operations":{"Pong":{"name":"Pong",
                "http":{"method":"POST","requestUri":"/"}}}}}"#,
        )
        .unwrap();
        std::fs::write(
            newer.join("paginators-1.json.gz"),
            gz(br#"{"pagination":{"Ping":{"input_token":"T","output_token":"T","result_key":"R"}}}"#),
        )
        .unwrap();
        let reg = ModelRegistry::bundled_only();
        assert!(reg.service("demo").is_err());
        reg.add_dir(dir);
        let s = reg.resolve("demo", "Pong").unwrap();
        assert_eq!(s.api_version, "2021-01-01");
        assert!(s.paginators.get("Ping").is_some());
        assert!(reg.service_names().contains(&"demo".to_string()));
        // A directory overrides the bundle for the services it has.
        let ec2 = dir.join("ec2").join("2016-11-15");
        std::fs::create_dir_all(&ec2).unwrap();
        std::fs::copy(
            newer.join("service-2.json.gz"),
            ec2.join("service-2.json.gz"),
        )
        .unwrap();
        let reg = ModelRegistry::bundled_only();
        reg.add_dir(dir);
        assert!(reg.resolve("ec2", "Ping").is_ok());
    }
}
