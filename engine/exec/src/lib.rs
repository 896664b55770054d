//! The step interpreter: runs a [`orgop_plan::Plan`] for one account/region item.
//!
//! Input: the plan, the runbook's shared data, the item, the run's facts (parameters, apply)
//! and an [`AwsApi`] bound to that account and region. Output: an [`ItemResult`], always,
//! whatever happened: a denied or failed call becomes the item's status and error, never a
//! panic or an early return without a record.
//!
//! Guarantees:
//! - steps are read-only; a mutating operation in a step is refused before it is sent;
//! - actions are sent only when the run applies them; otherwise each is recorded as planned
//!   with the exact parameters it would have been sent with;
//! - per result, actions run in order and a failed action stops the later ones for that result;
//! - deleting something already gone counts as done; `ignore_errors` codes count as done;
//! - resources carrying a protected tag are never acted on, and action caps are honoured;
//! - no HTTP of its own: everything goes through [`AwsApi`];
//! - a plan is compiled once ([`Prepared`]): items bind only their account, region and
//!   elements, so an item's cost is linear in its results;
//! - nothing is printed: each call is a `tracing` event at `debug` (step, call, pages or error
//!   code, duration; never parameters) for the binary's subscriber to show or drop.
#![deny(missing_docs)]

mod api;
mod expr;
mod interp;
mod prepare;
mod record;
mod replay;
mod result;
mod template;

pub use api::{ApiError, AwsApi, Call, ErrorKind, classify};
pub use expr::{ExprContext, search};
pub use interp::{
    ActionBudget, Item, ItemHooks, NoHooks, NotAdmitted, RunFacts, SharedBudget, idempotency_seed,
    run_item,
};
pub use prepare::{PrepareError, PrepareErrorKind, Prepared};
pub use record::{RecordApi, Recording, recording_body, recording_file};
pub use replay::ReplayApi;
pub use result::{ActionOutcome, ActionRecord, Finding, ItemError, ItemResult, Status};
