//! Runs a lowered runbook across the organization from one process.
//!
//! - [`fanout`]: accounts from Organizations (whole org, or OUs walked recursively), ACTIVE
//!   only, includes/excludes and account tag filters applied; regions from the runbook or the
//!   ones enabled in each account; the sorted cross product. An account or region that cannot
//!   be listed becomes a failed item, never a silent gap.
//! - [`run`]: bounded concurrency over the items; each item assumes the role through a
//!   [`Connector`] (a failure is that item's `denied`/`error` record) and runs the interpreter.
//!   Failed items never stop the others.
//! - [`sink`]: `results.jsonl` and the findings CSV, written from a [`sink::Spool`] that
//!   takes each result as it is done; [`Summary`]: counts for the end of a run.
//!
//! - [`outdir`]: a local `--out` folder's lock, its actions journal (written ahead of every
//!   mutating call) and the leftovers of an interrupted run.
//!
//! Progress is reported through a callback: this crate never prints.
#![deny(missing_docs)]

mod fanout;
pub mod outdir;
mod run;
pub mod sink;

pub use fanout::{FanoutError, Overrides, fanout};
pub use run::{
    Connector, Control, Event, Interrupt, RunError, RunOptions, Summary, enabled_regions,
    fanout_org, run, run_each, run_items, run_one,
};

mod live;
mod replay;
pub use live::{LiveApi, LiveConnector, api_error};
pub use replay::ReplayConnector;
