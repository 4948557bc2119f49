//! The console channel: notifications on standard error, readable or as JSON lines.

use std::io::Write;

use super::{Channel, Notification, SendError, render};

pub struct Console {
    pub json: bool,
}

impl Channel for Console {
    fn send(&self, n: &Notification) -> Result<(), SendError> {
        let text = if self.json {
            serde_json::to_string(&render::webhook(n)).map_err(|e| SendError(e.to_string()))? + "\n"
        } else {
            render::human_text(n)
        };
        let mut err = std::io::stderr().lock();
        err.write_all(text.as_bytes())
            .map_err(|e| SendError(format!("cannot write to stderr: {e}")))
    }
}
