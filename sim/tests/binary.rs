//! The `compliance-sim` process: the stdout line, flags, control endpoints, clean SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use compliance_sim::SimServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_compliance-sim");

/// Starts the binary and reads its `listening on` line.
async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("listening line in time")
        .expect("reads stdout");
    let base_url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base_url)
}

/// Sends SIGTERM to our own child, by its pid.
fn terminate(child: &Child) {
    let pid = child.id().expect("child running").to_string();
    let status =
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn the_binary_serves_generated_data_and_exits_cleanly_on_sigterm() {
    // GIVEN the binary started with a seed, two keys and generated data
    let (mut child, base_url) = start(&[
        "--seed",
        "9",
        "--api-key",
        "k-scoped",
        "--no-scope-key",
        "k-noscope",
        "--generate",
        "120",
        "--from",
        "2026-04-01T00:00:00Z",
        "--to",
        "2026-04-02T00:00:00Z",
    ])
    .await;
    assert!(base_url.starts_with("http://127.0.0.1:"));
    // WHEN reading the feed with each key
    let ok = send(
        &base_url,
        "GET",
        "/v1/compliance/activities?limit=1000&created_at.lt=2026-04-02T00:00:00Z",
        &[("x-api-key", "k-scoped"), ("anthropic-version", "2023-06-01")],
        None,
    )
    .await;
    let forbidden = send(
        &base_url,
        "GET",
        "/v1/compliance/activities",
        &[("x-api-key", "k-noscope"), ("anthropic-version", "2023-06-01")],
        None,
    )
    .await;
    // THEN the data is served and the scope is enforced
    assert_eq!(ok.ids().len(), 120);
    assert_eq!(forbidden.status, 403);
    // AND the control endpoints answer
    let requests = send(&base_url, "GET", "/_sim/requests", &[], None).await.json();
    assert_eq!(requests.as_array().unwrap().len(), 2);
    // AND SIGTERM ends it with success
    terminate(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits in time")
        .expect("waits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_binary_and_the_library_agree_for_the_same_seed() {
    // GIVEN the binary and an in-process simulator, both seed 5 with the same data
    let (mut child, base_url) = start(&[
        "--seed",
        "5",
        "--generate",
        "40",
        "--from",
        "2026-04-01T00:00:00Z",
        "--to",
        "2026-04-02T00:00:00Z",
    ])
    .await;
    let f = fixture_with(compliance_sim::SimConfig { seed: 5, ..Default::default() }).await;
    f.sim.generate(&compliance_sim::GenerateSpec {
        count: 40,
        from: "2026-04-01T00:00:00Z".parse().unwrap(),
        to: "2026-04-02T00:00:00Z".parse().unwrap(),
        hidden: false,
    });
    // WHEN reading the same page from both
    let query = "limit=10&created_at.lt=2026-04-02T00:00:00Z";
    let remote = send(
        &base_url,
        "GET",
        &format!("/v1/compliance/activities?{query}"),
        &[("x-api-key", compliance_sim::DEFAULT_API_KEY), ("anthropic-version", "2023-06-01")],
        None,
    )
    .await;
    let local = feed(&f.server, query).await;
    // THEN the bodies are byte-identical
    assert_eq!(remote.body, local.body);
    child.kill().await.expect("kills our child");
}

#[tokio::test]
async fn help_prints_usage_and_bad_arguments_exit_2() {
    let help = Command::new(BINARY).arg("--help").output().await.expect("runs");
    assert!(help.status.success());
    let usage = String::from_utf8(help.stdout).unwrap();
    assert!(usage.contains("--no-scope-key") && usage.contains("--latency-ms"));
    let bad = Command::new(BINARY).args(["--rate-limit", "many"]).output().await.expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr).unwrap().contains("--rate-limit"));
}

#[tokio::test]
async fn a_shut_down_sim_server_no_longer_serves() {
    // GIVEN a spawned server holding a recognisable activity
    let f = fixture().await;
    let probe = "activity_shutdown_probe";
    f.sim
        .insert_raw(&format!(r#"{{"id":"{probe}","created_at":"2026-04-01T00:00:00Z"}}"#), false)
        .unwrap();
    let Fixture { server, .. } = f;
    let address = server.base_url.trim_start_matches("http://").to_owned();
    // WHEN it is shut down
    SimServer::shutdown(server).await;
    // THEN nothing on its port serves its data (the OS may already have given the port to
    // another test's listener, so a connection alone proves nothing)
    if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!(
            "GET /_sim/activities HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
        );
        let mut answer = Vec::new();
        if stream.write_all(request.as_bytes()).await.is_ok() {
            let _ = stream.read_to_end(&mut answer).await;
        }
        assert!(!String::from_utf8_lossy(&answer).contains(probe));
    }
}
