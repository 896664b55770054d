//! Real parts for orgop's end-to-end tests: moto server (the AWS emulator, from the `.venv`
//! that `scripts/moto-venv.sh` makes) and `tests/support/aws_proxy.py`, each a child process
//! bound to 127.0.0.1 on a free port and killed when dropped. A fixture that cannot start
//! panics with what to do: a test never passes without its emulator. Also the repository root
//! ([`repo`]) and self-removing temporary folders ([`TempDir`]) for every test that needs them.
#![deny(missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod deploy_tools;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository exists")
}

/// A fresh, empty folder in the system's temporary directory, named
/// `orgop-<tag>-<process id>-<counter>-<nanoseconds>` so that no two are the same, within a
/// process or across processes. Removed, with everything in it, when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes the folder; `tag` says in its name what it is for.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("orgop-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The virtualenv's python (with moto and boto3), made by `scripts/moto-venv.sh` if missing.
pub fn venv_python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    if !python.exists() {
        let status = Command::new("bash")
            .arg(repo().join("scripts/moto-venv.sh"))
            .status()
            .expect("bash runs scripts/moto-venv.sh");
        assert!(
            status.success(),
            "scripts/moto-venv.sh failed: the emulator cannot be installed"
        );
    }
    python
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A plain HTTP GET on 127.0.0.1, for readiness checks and stats.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

/// A running child process, killed on drop.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto server and waits until it answers.
pub fn moto() -> Server {
    let python = venv_python();
    let port = free_port();
    let child = Command::new(python.parent().expect("venv bin").join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_get(port, "/moto-api/").is_some() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto server did not answer on 127.0.0.1:{port} within 60 s");
}

/// Starts `tests/support/aws_proxy.py` in front of `upstream` with extra arguments.
pub fn proxy(upstream: &str, args: &[&str]) -> Server {
    let mut child = Command::new(venv_python())
        .arg(repo().join("tests/support/aws_proxy.py"))
        .args(["--upstream", upstream])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the proxy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the proxy says where it listens");
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected proxy output: {line:?}"));
    Server { child, port }
}

/// The proxy's counters (`forwarded`, `denied_assume_role`, `throttled`, `ec2_requests`).
pub fn proxy_stats(proxy: &Server) -> serde_json::Value {
    let body = http_get(proxy.port, "/__proxy/stats").expect("the proxy answers");
    serde_json::from_str(&body).expect("stats are JSON")
}

/// Seeds an organization into moto (`tests/support/seed_org.py`); returns what `unused-ebs`
/// must find.
pub fn seed_org(
    endpoint: &str,
    accounts: usize,
    regions: &str,
    unattached: usize,
) -> serde_json::Value {
    let out = Command::new(venv_python())
        .arg(repo().join("tests/support/seed_org.py"))
        .args([
            "--endpoint",
            endpoint,
            "--accounts",
            &accounts.to_string(),
            "--regions",
            regions,
        ])
        .args(["--unattached", &unattached.to_string()])
        .output()
        .expect("the seeding script runs");
    assert!(
        out.status.success(),
        "seeding failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the seeding script prints JSON")
}

/// Runs `program args... --endpoint-url endpoint` from the repository root against an
/// emulator: test credentials, `us-east-1`, and no profile or endpoint from the environment
/// (so a developer's own AWS settings never leak into a test). Its output, once it ended.
pub fn run_against(program: &str, endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .args(["--endpoint-url", endpoint])
        .current_dir(repo())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("the program runs")
}

/// What [`measure`] saw of one child process.
pub struct Measured {
    /// Its exit status and what it printed.
    pub output: std::process::Output,
    /// From start to exit (including the ~20 ms of the measuring script's start).
    pub elapsed: Duration,
    /// Its peak resident memory in KiB, as the kernel accounts it (`ru_maxrss`), never below
    /// the ~13 MB of the measuring script (`tests/support/measure.py`).
    pub peak_rss_kib: u64,
}

/// Runs `cmd` to its end (stdout and stderr captured) and measures its time and peak memory.
///
/// The command runs under `tests/support/measure.py`, which asks the kernel for its peak once
/// it has ended: sampling `/proc/<pid>/status` from here missed a process that ended within
/// the first sample (on CI, 0 KiB for a 6 ms run). The program, arguments, working directory
/// and environment of `cmd` are passed on.
pub fn measure(cmd: &mut Command) -> Measured {
    let peak = TempDir::new("measure");
    let peak_file = peak.path().join("peak");
    let mut wrapped = Command::new("python3");
    wrapped
        .arg(repo().join("tests/support/measure.py"))
        .arg(&peak_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    let start = Instant::now();
    let output = wrapped
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs tests/support/measure.py");
    let elapsed = start.elapsed();
    let peak_rss_kib = std::fs::read_to_string(&peak_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "tests/support/measure.py wrote no peak for {:?}: {}",
                cmd.get_program(),
                String::from_utf8_lossy(&output.stderr)
            )
        });
    Measured {
        output,
        elapsed,
        peak_rss_kib,
    }
}
