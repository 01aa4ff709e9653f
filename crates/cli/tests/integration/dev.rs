//! `funnel dev` as a user runs it: start, wait until it serves, find scored
//! leads, stop with Ctrl-C (SIGINT) and see it exit cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: a debug build trains on the demo data before it serves.
const READY_WITHIN: Duration = Duration::from_secs(240);

#[test]
fn dev_mode_serves_scored_leads_and_stops_cleanly_on_ctrl_c() {
    let directory = tempfile::tempdir().expect("temp dir");
    let database = directory.path().join("dev.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["dev", "--listen", "127.0.0.1:0", "--opportunities", "400", "--database"])
        .arg(&database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("funnel dev starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let server = loop {
        let line =
            received.recv_timeout(READY_WITHIN).unwrap_or_else(|_| panic!("dev mode never served; it said {seen:?}"));
        if let Some(rest) = line.strip_prefix("funnel dev is serving on ") {
            break rest.split_whitespace().next().expect("an address follows").to_owned();
        }
        seen.push(line);
    };
    assert!(seen.iter().any(|line| line.starts_with("loaded 400 simulated opportunities")), "{seen:?}");
    assert!(seen.iter().any(|line| line.starts_with("scored ")), "{seen:?}");

    let leads = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["--server", &server, "--json", "leads"])
        .output()
        .expect("funnel leads runs");
    assert!(leads.status.success(), "{}", String::from_utf8_lossy(&leads.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&leads.stdout).expect("--json output parses");
    let text = parsed.to_string();
    assert!(text.contains("p_advance"), "scored leads are listed: {text}");

    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(interrupted.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on funnel dev") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "funnel dev did not stop within 30 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "funnel dev exits cleanly: {status}");
}
