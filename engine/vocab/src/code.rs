//! orgop's own error codes: the only place they are spelt. An item's `error.code` is either
//! AWS's code or one of these; the Lambda's `errorType` and the state machine's `Fail` states
//! use the `OrgOp.*` ones.

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// An error code orgop itself produces.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$( Code::$variant, )*];

            /// The code as it appears in results, `errorType` and ASL.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Code::$variant => $name, )*
                }
            }
        }
    };
}

codes! {
    /// AWS kept throttling orgop's own plumbing (results store, STS) past the retries; Step
    /// Functions retries the item later.
    Throttled = "OrgOp.Throttled",
    /// A transient failure of orgop's plumbing (network, 5xx from the results store).
    Transient = "OrgOp.Transient",
    /// The results store refused a write for a non-transient reason.
    ResultsStore = "OrgOp.ResultsStore",
    /// A payload or plan this build of orgop does not understand (wrong plan format, bad
    /// shape).
    InvalidInput = "OrgOp.InvalidInput",
    /// A bug in orgop: a worker task that panicked, a failure with no recorded cause.
    Internal = "OrgOp.Internal",
    /// A template or `when` condition failed to render for an item (strict undefined, a
    /// type error).
    Template = "OrgOp.Template",
    /// A JMESPath expression failed on an item's data.
    Expression = "OrgOp.Expression",
    /// A step names a mutating operation: refused before it is sent.
    MutatingStep = "OrgOp.MutatingStep",
    /// An account named in the targets is not in the organization.
    AccountNotFound = "OrgOp.AccountNotFound",
    /// A targeted account is not ACTIVE in Organizations (SUSPENDED, PENDING_CLOSURE): not run.
    AccountNotActive = "OrgOp.AccountNotActive",
    /// Replay: no recorded response for a call.
    NoRecording = "OrgOp.NoRecording",
    /// Replay: a recorded response is not valid JSON.
    BadRecording = "OrgOp.BadRecording",
    /// `orgop run` was interrupted (SIGINT/SIGTERM) before the item started or finished.
    Interrupted = "OrgOp.Interrupted",
    /// The state machine's fanout failed: the organization could not be listed.
    FanoutFailed = "OrgOp.FanoutFailed",
    /// The state machine's end: at least one item ended denied or error.
    ItemsFailed = "OrgOp.ItemsFailed",
    /// The Lambda worker stopped short of its function's timeout: no new calls within the
    /// margin before the deadline; what it finished is recorded.
    LambdaTimeout = "OrgOp.LambdaTimeout",
    /// The result handler found no worker result and no recorded failure for a listed item.
    ItemLost = "OrgOp.ItemLost",
    /// An action's `wait:` polled its waiter as often as its timeout allows without success.
    WaiterTimeout = "OrgOp.WaiterTimeout",
    /// Another applier holds the runbook's apply lock in the organization: nothing was sent.
    LockHeld = "OrgOp.LockHeld",
    /// A deployed run waiting for approval was rejected (`orgop reject`): nothing applied.
    Rejected = "OrgOp.Rejected",
    /// A deployed run waiting for approval was neither approved nor rejected within the
    /// runbook's `approval.timeout_hours`: nothing applied.
    ApprovalTimedOut = "OrgOp.ApprovalTimedOut",
    /// The client: the service name is not in any loaded model (nothing was sent).
    UnknownService = "UnknownService",
    /// The client: the operation is not in the service's model (nothing was sent).
    UnknownOperation = "UnknownOperation",
    /// The client: the parameters do not fit the operation's input shape (nothing was sent).
    ValidationError = "ValidationError",
    /// The client: anything else wrong before sending (endpoint, model, serialization).
    InvalidRequest = "InvalidRequest",
    /// The client: the network failed (connection, timeout) on the last attempt.
    Transport = "Transport",
    /// The client: no credentials could be found.
    NoCredentials = "NoCredentials",
    /// The client: a waiter reached a failure state or gave up.
    WaiterFailed = "WaiterFailed",
    /// The client: a response that does not follow the service's protocol.
    ResponseParseError = "ResponseParseError",
    /// The client: a paginated call was stopped (a repeated token, or the page limit).
    PaginationError = "PaginationError",
    /// The client: no answer within the call's deadline, every attempt included.
    DeadlineExceeded = "DeadlineExceeded",
    /// The client: a response body larger than the client's limit, refused unread.
    ResponseTooLarge = "ResponseTooLarge",
}

impl Code {
    /// The code named `name`, if it is one of orgop's.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.name()), "{} twice", c.name());
            assert_eq!(Code::from_name(c.name()), Some(*c));
        }
        assert_eq!(Code::from_name("AccessDenied"), None);
    }

    /// The list of every code, and the proof it is the only one: no `"OrgOp.` string literal
    /// in the engine's or the compiler's sources outside this file.
    #[test]
    fn no_orgop_code_is_spelt_anywhere_else() {
        let listed: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            listed,
            [
                "OrgOp.Throttled",
                "OrgOp.Transient",
                "OrgOp.ResultsStore",
                "OrgOp.InvalidInput",
                "OrgOp.Internal",
                "OrgOp.Template",
                "OrgOp.Expression",
                "OrgOp.MutatingStep",
                "OrgOp.AccountNotFound",
                "OrgOp.AccountNotActive",
                "OrgOp.NoRecording",
                "OrgOp.BadRecording",
                "OrgOp.Interrupted",
                "OrgOp.FanoutFailed",
                "OrgOp.ItemsFailed",
                "OrgOp.LambdaTimeout",
                "OrgOp.ItemLost",
                "OrgOp.WaiterTimeout",
                "OrgOp.LockHeld",
                "OrgOp.Rejected",
                "OrgOp.ApprovalTimedOut",
                "UnknownService",
                "UnknownOperation",
                "ValidationError",
                "InvalidRequest",
                "Transport",
                "NoCredentials",
                "WaiterFailed",
                "ResponseParseError",
                "PaginationError",
                "DeadlineExceeded",
                "ResponseTooLarge",
            ]
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/code.rs");
        let mut offenders = Vec::new();
        let mut dirs = vec![root.join("engine"), root.join("statemachine/src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    // Only library and binary sources: tests assert on the names.
                    let name = path.file_name().unwrap().to_string_lossy().to_string();
                    if name != "tests" && name != "benches" && name != "target" {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path.canonicalize().unwrap() != this.canonicalize().unwrap()
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let spelt = line.match_indices("\"OrgOp.").any(|(i, m)| {
                            line[i + m.len()..].starts_with(|c: char| c.is_ascii_uppercase())
                        });
                        if spelt && !line.trim_start().starts_with("//") {
                            offenders.push(format!(
                                "{}:{}: {}",
                                path.display(),
                                n + 1,
                                line.trim()
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "spell these with orgop_vocab::Code:\n{}",
            offenders.join("\n")
        );
    }
}
