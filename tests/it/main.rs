//! The integration suite: one binary, one module per command, all through the real `recur`
//! executable with the small builder in [`harness`].

mod harness;
mod scan;
mod track;
mod watch;
