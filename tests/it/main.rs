//! The integration suite: one binary, one module per command, all through the real `recur`
//! executable with the small builder in [`harness`].

mod grep;
mod harness;
mod notify;
mod scan;
mod servers;
mod track;
mod watch;
