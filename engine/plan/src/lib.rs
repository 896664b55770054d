//! The contract between the compiler, the local runner and the orgop Lambda.
//!
//! - [`Plan`]: a checked runbook lowered to plain data: what the worker interprets for one
//!   account/region item. Stable JSON (fields in declaration order, maps sorted), so compiled
//!   state machines are byte-for-byte reproducible.
//! - [`Lowered`]: the plan plus what the deployment needs (targets, shared data, concurrency,
//!   Map mode, schedule).
//! - [`contract`]: the payload shapes and field names the compiled ASL and the Lambda handlers
//!   exchange, and [`WorkerError`], the error names Step Functions retries and catches on.
//! - [`functions`]: the JMESPath functions and template names runbooks may use.
//! - [`templates`]: the template language's settings, shared by the checker and the interpreter.
//! - [`limits`]: the bounds on expressions and templates, shared likewise.
//!
//! Depends on nothing of orgop but its vocabulary (`orgop-vocab`), and on nothing of AWS or
//! ASL.
#![deny(missing_docs)]

pub mod canonical;
pub mod contract;
mod errors;
pub use errors::LAMBDA_TRANSIENT_ERRORS;
pub mod functions;
pub mod limits;
pub mod params;
mod plan;
pub mod templates;

pub use errors::WorkerError;
pub use plan::*;
