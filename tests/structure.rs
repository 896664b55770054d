//! Properties of the source tree that review alone would let slip: errors in the runner, the
//! Lambda and the AWS client are typed (no `Result<_, String>`), so every failure keeps its
//! source and its kind.
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_string_errors_in_the_runner_the_lambda_or_the_client() {
    let root = orgop_testkit::repo();
    let mut files = Vec::new();
    for krate in ["engine/runner/src", "engine/lambda/src", "engine/aws/src"] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(files.len() > 10, "the sources were not found");
    let mut offenders = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let squeezed: String = line.split_whitespace().collect();
            if squeezed.contains("Result<") && squeezed.contains(",String>") {
                offenders.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "give these a typed error:\n{}",
        offenders.join("\n")
    );
}
