//! `recur.toml`: input settings, state location, notification channels and redaction.
