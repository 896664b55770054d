//! What keeps a local `--out` folder honest while a run writes into it:
//!
//! - [`OutLock`]: one run at a time. `DIR/.orgop.lock` holds the pid of the run using the
//!   folder, under an advisory lock (`flock`) the kernel drops when that process ends, however
//!   it ends: a lock file left by a killed run is stale, not held, and is taken over.
//! - [`Journal`]: the actions journal (`DIR/.actions.journal.jsonl`), written ahead of every
//!   mutating call: a `sent` record, on disk (fsync'd) before the request goes out, then an
//!   `answered` record with its outcome. A `sent` record without an `answered` one with the
//!   same `seq` is an action whose outcome is unknown (the run died while it was in flight).
//! - [`keep_leftovers`]: the spool and journal an interrupted run left are renamed aside,
//!   never overwritten or deleted.
use crate::sink::SinkError;
use orgop_exec::{ActionRecord, Item, ItemHooks};
use serde_json::json;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The lock file's name.
pub const LOCK_FILE: &str = ".orgop.lock";
/// The actions journal's name.
pub const ACTIONS_JOURNAL: &str = ".actions.journal.jsonl";
/// The spool's name (its CSV rows: the same with the extension `csv`).
pub const SPOOL: &str = ".results.spool.jsonl";

fn io(path: &Path) -> impl Fn(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why the folder cannot be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error("{} is in use by another orgop run (pid {})", dir.display(), pid.map_or("unknown".to_string(), |p| p.to_string()))]
    Busy {
        /// The folder.
        dir: PathBuf,
        /// The other run's pid, as its lock file says.
        pid: Option<u32>,
    },
    /// The lock file cannot be made or read.
    #[error(transparent)]
    Io(#[from] SinkError),
}

/// A held lock on an output folder; [`OutLock::release`] removes it (dropping it releases the
/// lock and leaves the file, which the next run then takes over as stale).
#[derive(Debug)]
pub struct OutLock {
    file: File,
    path: PathBuf,
}

impl OutLock {
    /// Locks `dir` (made if missing) for this process. Answers the lock and, when the lock
    /// file was left by a run that is gone, that run's pid.
    pub fn acquire(dir: &Path) -> Result<(OutLock, Option<u32>), LockError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        loop {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Busy {
                        dir: dir.to_path_buf(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e).into()),
            }
            // The holder before us may have removed the file between our open and our lock:
            // then we locked a file no one else will see; start again.
            if !same_file(&file, &path) {
                continue;
            }
            let stale = read_pid(&mut file);
            file.set_len(0)
                .and_then(|_| file.seek(SeekFrom::Start(0)))
                .and_then(|_| writeln!(file, "{}", std::process::id()))
                .and_then(|_| file.sync_data())
                .map_err(io(&path))?;
            return Ok((OutLock { file, path }, stale));
        }
    }

    /// Removes the lock file, then lets the lock go.
    pub fn release(self) -> Result<(), SinkError> {
        let removed = std::fs::remove_file(&self.path).map_err(io(&self.path));
        drop(self.file);
        removed
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
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

/// Renames what an interrupted run left in `dir` (its spool, the spool's CSV rows, its actions
/// journal; only non-empty ones) to `<name>.<stamp>` beside it; answers each (from, to).
pub fn keep_leftovers(dir: &Path, stamp: &str) -> Result<Vec<(PathBuf, PathBuf)>, SinkError> {
    let spool_csv = Path::new(SPOOL).with_extension("csv");
    let mut kept = Vec::new();
    for name in [Path::new(SPOOL), &spool_csv, Path::new(ACTIONS_JOURNAL)] {
        let from = dir.join(name);
        match std::fs::metadata(&from) {
            Ok(m) if m.len() > 0 => {
                let to = dir.join(format!("{}.{stamp}", name.display()));
                std::fs::rename(&from, &to).map_err(io(&from))?;
                kept.push((from, to));
            }
            Ok(_) => std::fs::remove_file(&from).map_err(io(&from))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&from)(e)),
        }
    }
    Ok(kept)
}

/// The actions journal: one JSON object a line, appended by every item (see the module's
/// documentation). Its [`ItemHooks`] write `sent` (flushed and fsync'd before the request
/// goes out) and `answered` (written at once, fsync'd by [`Journal::finish`]).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    seq: AtomicU64,
    /// The first `answered` record that could not be written.
    error: Mutex<Option<std::io::Error>>,
}

impl Journal {
    /// A new journal at `path` (created; an existing one is appended to, never truncated).
    pub fn create(path: PathBuf) -> Result<Journal, SinkError> {
        let file = File::options()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
            seq: AtomicU64::new(0),
            error: Mutex::new(None),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, line: &serde_json::Value, sync: bool) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).expect("a journal record serializes");
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&bytes)?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Puts everything on disk; answers the first write that failed, if any did.
    pub fn finish(&self) -> Result<(), SinkError> {
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(io(&self.path)(e));
        }
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_all().map_err(io(&self.path))
    }

    /// Deletes the journal (once the results files hold every action it recorded).
    pub fn remove(self) -> Result<(), SinkError> {
        let Journal { path, file, .. } = self;
        drop(file);
        std::fs::remove_file(&path).map_err(io(&path))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ItemHooks for Journal {
    fn before_send(&self, item: &Item, record: &ActionRecord) -> std::io::Result<u64> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.write(
            &json!({
                "seq": seq,
                "event": "sent",
                "at_ms": now_ms(),
                "account_id": item.account_id,
                "region": item.region,
                "action": record.action,
                "call": record.call,
                "resource_id": record.resource_id,
                "parameters": record.parameters,
            }),
            true,
        )?;
        Ok(seq)
    }

    fn answered(&self, seq: u64, item: &Item, record: &ActionRecord) {
        let written = self.write(
            &json!({
                "seq": seq,
                "event": "answered",
                "at_ms": now_ms(),
                "account_id": item.account_id,
                "region": item.region,
                "action": record.action,
                "call": record.call,
                "resource_id": record.resource_id,
                "outcome": record.outcome,
                "reason": record.reason,
            }),
            false,
        );
        if let Err(e) = written {
            self.error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_a_stale_one_taken_over() {
        let tmp = orgop_testkit::TempDir::new("outlock-test");
        let (lock, stale) = OutLock::acquire(tmp.path()).unwrap();
        assert_eq!(stale, None);
        match OutLock::acquire(tmp.path()) {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        lock.release().unwrap();
        assert!(!tmp.path().join(LOCK_FILE).exists());
        // A file left by a run that is gone: no one holds it.
        std::fs::write(tmp.path().join(LOCK_FILE), "4000000\n").unwrap();
        let (lock, stale) = OutLock::acquire(tmp.path()).unwrap();
        assert_eq!(stale, Some(4_000_000));
        lock.release().unwrap();
    }

    #[test]
    fn leftovers_are_renamed_not_deleted() {
        let tmp = orgop_testkit::TempDir::new("leftover-test");
        std::fs::write(tmp.path().join(SPOOL), "{}\n").unwrap();
        std::fs::write(tmp.path().join(".results.spool.csv"), "").unwrap();
        let kept = keep_leftovers(tmp.path(), "20260101T000000Z").unwrap();
        assert_eq!(kept.len(), 1);
        assert!(
            tmp.path()
                .join(".results.spool.jsonl.20260101T000000Z")
                .exists()
        );
        assert!(!tmp.path().join(SPOOL).exists());
    }
}
