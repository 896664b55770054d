//! orgop's vocabulary: one table per concept, in a crate without I/O, so the live client,
//! replayed recordings, the interpreter, the Lambda and the compiler cannot disagree.
//!
//! - [`aws`]: AWS error codes and what they mean (denied, throttling, transient, expired
//!   credentials, not found, not enabled), from the AWS SDKs' lists.
//! - [`verbs`]: read-only vs mutating operations, and the verbs whose "not found" answer
//!   means the work is already done.
//! - [`Code`]: orgop's own error codes (`OrgOp.*`), the only place they are spelt.
//! - [`Status`]: how an account x region item ended.
#![deny(missing_docs)]

pub mod aws;
mod code;
mod status;
pub mod verbs;

pub use code::Code;
pub use status::Status;
