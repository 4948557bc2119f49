//! `recur scan` end to end.

use crate::harness::{Workspace, repo};

#[test]
fn shipped_examples_show_the_recurrence() {
    let ws = Workspace::new();
    ws.shipped_rules();
    let out = ws
        .recur()
        .args(["scan", "--no-state", "--format", "json", "--no-notify"])
        .arg(repo().join("examples/logs"))
        .run()
        .code(1);
    let doc = out.json();
    let rems = doc["remediations"].as_array().unwrap();
    let ws_rem = rems.iter().find(|r| r["id"] == "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001").unwrap();
    assert_eq!(ws_rem["verdict"], "recurring");
    assert_eq!(ws_rem["recurrences"], 6);
    assert_eq!(ws_rem["before_fix"], 15);
}
