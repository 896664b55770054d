//! One applier at a time per runbook and organization (`orgop run --apply`, `orgop apply`).
//!
//! The lock is a file, `STATE/locks/<runbook>@<organization>.lock`, under the state folder
//! (`ORGOP_STATE_DIR`, else `$XDG_STATE_HOME/orgop`, else `~/.local/state/orgop`), held with
//! an advisory lock (`flock`) that the kernel drops when the holder ends, however it ends: a
//! crashed or killed applier never leaves it held, and its file is taken over. The file holds
//! the holder (pid, host, start time, command) for the one refused. `--force-unlock` removes a
//! lock file no process holds (it never removes a held one). Dry runs never lock.
//!
//! With a lock table (`--lock-table`, `ORGOP_LOCK_TABLE`) the lock is an item of that DynamoDB
//! table instead ([`crate::tablelock`]), shared with the deployed state machine.
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock, UTC.
    pub started_at: String,
    /// Its command line.
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {} ({})",
            self.pid, self.host, self.started_at, self.command
        )
    }
}

/// A held lock; dropping it removes its file, then lets the lock go.
#[derive(Debug)]
pub struct ApplyLock {
    /// Held open: the flock lives as long as it does.
    _file: File,
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds it.
    Busy {
        /// The lock file.
        path: PathBuf,
        /// What its file says, when readable.
        holder: Option<Holder>,
    },
    /// The state folder or lock file cannot be used.
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy { path, holder } => write!(
                f,
                "another orgop is applying this runbook in this organization: {} (lock {}): wait for it to end; a lock whose holder is gone is taken over by itself",
                holder
                    .as_ref()
                    .map_or("holder unknown".to_string(), |h| h.to_string()),
                path.display()
            ),
            LockError::Io(m) => f.write_str(m),
        }
    }
}

/// The state folder: `ORGOP_STATE_DIR`, else `$XDG_STATE_HOME/orgop`, else
/// `$HOME/.local/state/orgop`.
pub fn state_dir() -> Result<PathBuf, LockError> {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("ORGOP_STATE_DIR") {
        return Ok(d);
    }
    if let Some(d) = var("XDG_STATE_HOME") {
        return Ok(d.join("orgop"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".local/state/orgop"));
    }
    Err(LockError::Io(
        "no state folder for the apply lock: set ORGOP_STATE_DIR (or XDG_STATE_HOME or HOME)"
            .into(),
    ))
}

/// The lock file of `runbook` in `organization`.
pub fn lock_path(runbook: &str, organization: &str) -> Result<PathBuf, LockError> {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    Ok(state_dir()?
        .join("locks")
        .join(format!("{}@{}.lock", safe(runbook), safe(organization))))
}

pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// `--force-unlock`: removes the lock file at `path` when no process holds it; answers what
/// it said. A held lock is never removed: `Err(Busy)`.
pub fn force_unlock(path: &Path) -> Result<Option<Holder>, LockError> {
    let io = |e: std::io::Error| LockError::Io(format!("{}: {e}", path.display()));
    let mut file = match File::options().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    match file.try_lock() {
        Ok(()) => {
            let was = read_holder(&mut file);
            std::fs::remove_file(path).map_err(io)?;
            Ok(was)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy {
            path: path.to_path_buf(),
            holder: read_holder(&mut file),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

impl ApplyLock {
    /// Takes the lock at `path` for this process, `command` its command line. Answers the lock
    /// and, when the file was left by a holder that is gone, what it said.
    pub fn acquire(path: &Path, command: &str) -> Result<(ApplyLock, Option<Holder>), LockError> {
        let io = |e: std::io::Error| LockError::Io(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        loop {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Busy {
                        path: path.to_path_buf(),
                        holder: read_holder(&mut file),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            // The holder before us removed the file between our open and our lock.
            if !same_file(&file, path) {
                continue;
            }
            let stale = read_holder(&mut file);
            let me = Holder {
                pid: std::process::id(),
                host: host(),
                started_at: crate::apply::utc_now(),
                command: command.to_string(),
            };
            let text = serde_json::to_string(&me).expect("a holder serializes");
            file.set_len(0)
                .and_then(|_| file.seek(SeekFrom::Start(0)))
                .and_then(|_| writeln!(file, "{text}"))
                .and_then(|_| file.sync_data())
                .map_err(io)?;
            return Ok((
                ApplyLock {
                    _file: file,
                    path: path.to_path_buf(),
                },
                stale,
            ));
        }
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // While still held: the next holder finds no file, or its own.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The organization the caller is in (`organizations:DescribeOrganization` with the caller's
/// own session), or `None` when it cannot be read.
pub async fn organization_id<C: orgop_runner::Connector>(c: &C) -> Option<String> {
    use orgop_exec::AwsApi as _;
    let api = c.org().await.ok()?;
    let params = serde_json::json!({});
    let pages = api
        .call(orgop_exec::Call {
            service: "organizations",
            operation: "DescribeOrganization",
            params: &params,
            paginate: false,
        })
        .await
        .ok()?;
    pages
        .first()?
        .pointer("/Organization/Id")?
        .as_str()
        .map(str::to_string)
}

/// A held apply lock: a lock file, or an item of the lock table. Dropping it releases it.
pub enum Held {
    /// The local lock file.
    File(#[allow(dead_code)] ApplyLock),
    /// The item in the DynamoDB lock table.
    Table(#[allow(dead_code)] crate::tablelock::TableLock),
}

/// Takes the apply lock of `runbook` in `organization` (`None`: unknown, which is locked as
/// `unknown-organization`): in the lock table when `choice` names one, else the local lock
/// file; first removing a lock no one holds (file) or an expired one (table) when
/// `force_unlock`. Prints what it did; `Err` is the exit status, the reason printed.
pub async fn take(
    runbook: &str,
    organization: Option<&str>,
    force_unlock: bool,
    choice: &crate::tablelock::TableChoice,
) -> Result<Held, u8> {
    if let Some(table) = &choice.table {
        return crate::tablelock::take(choice, table, runbook, organization, force_unlock)
            .await
            .map(Held::Table);
    }
    if choice.force_unlock_holder.is_some() {
        eprintln!(
            "orgop: --force-unlock-holder names a holder in a lock table: give --lock-table (or ORGOP_LOCK_TABLE)"
        );
        return Err(crate::EXIT_USAGE);
    }
    take_file(runbook, organization, force_unlock).map(Held::File)
}

fn take_file(
    runbook: &str,
    organization: Option<&str>,
    force_unlock: bool,
) -> Result<ApplyLock, u8> {
    let org = organization.unwrap_or("unknown-organization");
    let fail = |e: LockError| {
        eprintln!("orgop: {e}");
        Err(crate::EXIT_USAGE)
    };
    let path = match lock_path(runbook, org) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if force_unlock {
        match force_unlock_at(&path) {
            Ok(()) => {}
            Err(e) => return fail(e),
        }
    }
    let command: Vec<String> = std::env::args().collect();
    match ApplyLock::acquire(&path, &command.join(" ")) {
        Ok((lock, stale)) => {
            if let Some(h) = stale {
                eprintln!(
                    "orgop: took over the apply lock {} left by {h}, which no longer holds it",
                    path.display()
                );
            }
            Ok(lock)
        }
        Err(e) => fail(e),
    }
}

fn force_unlock_at(path: &Path) -> Result<(), LockError> {
    match force_unlock(path)? {
        Some(h) => eprintln!(
            "orgop: --force-unlock: removed {} (left by {h}; no process held it)",
            path.display()
        ),
        None if path.exists() => {}
        None => eprintln!("orgop: --force-unlock: no lock file at {}", path.display()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_and_names_its_holder_a_left_one_is_taken_over() {
        let tmp = orgop_testkit::TempDir::new("applylock");
        let path = tmp.path().join("locks/r@o-1.lock");
        let (lock, stale) = ApplyLock::acquire(&path, "first").unwrap();
        assert_eq!(stale, None);
        match ApplyLock::acquire(&path, "second") {
            Err(LockError::Busy {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.command, "first");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(force_unlock(&path), Err(LockError::Busy { .. })));
        drop(lock);
        assert!(!path.exists());
        std::fs::write(
            &path,
            r#"{"pid":4000000,"host":"h","started_at":"t","command":"c"}"#,
        )
        .unwrap();
        assert_eq!(force_unlock(&path).unwrap().unwrap().pid, 4_000_000);
        assert!(!path.exists());
        std::fs::write(&path, "not json").unwrap();
        let (lock, stale) = ApplyLock::acquire(&path, "third").unwrap();
        assert_eq!(stale, None);
        drop(lock);
    }
}
