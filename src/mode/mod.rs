//! The commands. Each mode wires the shared stages together and differs only at the ends.

pub mod check;
pub mod common;
pub mod grep;
pub mod notify;
pub mod scan;
pub mod state;
pub mod status;
pub mod test;
pub mod watch;
