//! Results on stdout. Every write goes through here and returns its `io::Result`, so a failed
//! write reaches [`exit_status`] instead of panicking inside `println!`: a closed pipe
//! (`orgop schema | head -1`) ends the command quietly with status 0, since the reader has
//! what it wanted; any other write error (`> /dev/full`) is reported on stderr as
//! `orgop: writing to stdout: <error>`, status 2.
use std::io::{self, Write};
use std::process::ExitCode;

use crate::{EXIT_OK, EXIT_USAGE};

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `text` and a newline to stdout and flushes them.
pub fn println(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The process status of a command that returns `Err` only for a failed write to stdout.
pub fn exit_status(result: io::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Err(e) => {
            // stderr may be gone too; there is nobody left to tell then.
            let _ = writeln!(io::stderr(), "orgop: writing to stdout: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
