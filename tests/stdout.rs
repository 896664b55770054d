//! Results on stdout when stdout goes away: a reader that closes the pipe early (`orgop schema |
//! head -1`) is not a crash (status 0, nothing on stderr); a write that fails otherwise (a full
//! disk) is an error that says so (status 2).
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn orgop(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orgop"));
    c.args(args).current_dir(orgop_testkit::repo());
    c
}

#[test]
fn a_pipe_closed_after_one_line_ends_the_command_quietly() {
    let mut child = orgop(&["schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgop runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim_end(), "{");
    // The reader is dropped here: the pipe is closed, like `| head -1`.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    assert_eq!(err, "");
}

#[test]
fn a_pipe_closed_before_the_first_write_ends_the_command_quietly() {
    // The schema fits in a pipe's buffer, so the test above may finish writing before the pipe
    // closes; here the read end is gone before orgop starts, so its write certainly fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = orgop(&["schema"])
        .stdout(writer)
        .output()
        .expect("orgop runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{err}");
    assert_eq!(err, "");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_that_names_it() {
    for args in [
        &["schema"][..],
        &["validate", "--format", "json", "runbooks"][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = orgop(args).stdout(full).output().expect("orgop runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr:\n{err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(
            line.starts_with("orgop: writing to stdout: ") && line.contains("No space left"),
            "{args:?}: stderr:\n{err}"
        );
    }
}
