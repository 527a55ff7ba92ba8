//! The audit stream: one JSON object per detection (SPEC §5), written off the
//! data path, and the token-sprawl summary of an audit file.

mod clock;
mod record;
mod summary;
mod writer;

pub use clock::{ArrivalClock, rfc3339_millis};
pub use record::AuditRecord;
pub use summary::{Summary, SummaryError, SummaryRow};
pub(crate) use writer::check;
pub use writer::{AuditHandle, AuditOutcome, AuditWriter};
