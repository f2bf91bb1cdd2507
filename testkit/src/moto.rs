//! The local AWS emulator: `tools/aws_emulator.py` (moto server plus a CBOR front for CloudWatch)
//! run from the project virtualenv `<workspace>/.venv`.
//!
//! The child gets a piped stdin that we hold open: when the test process ends, for whatever reason,
//! the pipe closes and the emulator exits, so no server outlives its tests. Starting one takes about
//! a second; [`Moto::shared`] starts one per test binary, and tests isolate themselves by unique
//! resource names rather than by emulator.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use crate::{Error, error_chain, workspace_root};

/// How long the emulator may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Set to `1` to have the emulator log every request to stderr.
pub const VERBOSE_ENV: &str = "TESTKIT_MOTO_VERBOSE";

/// A running emulator; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    child: Child,
    // Held open: the emulator exits when it reaches EOF on stdin.
    _stdin: ChildStdin,
}

impl Moto {
    /// Starts a new emulator on a free loopback port and waits until it listens.
    ///
    /// Blocking (it does not need a tokio runtime); call it from `spawn_blocking` in async code that
    /// cares, or use [`Moto::shared`].
    pub fn start() -> Result<Moto, Error> {
        let root = workspace_root();
        let python = venv_python();
        if !python.exists() {
            return Err(Error::VenvMissing { python });
        }
        let script = root.join("tools").join("aws_emulator.py");
        let mut command = Command::new(&python);
        command.arg(&script).args(["--host", "127.0.0.1", "--port", "0"]);
        if std::env::var(VERBOSE_ENV).is_ok_and(|v| v == "1") {
            command.arg("--verbose");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| Error::Spawn { program: python.clone(), source })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            let _ = child.kill();
            return Err(Error::MotoStart { reason: "its stdio pipes were not created".to_owned() });
        };

        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("moto-stdout".to_owned())
            .spawn(move || forward_stdout(stdout, tx))
            .map_err(|source| Error::io("spawning the moto stdout reader", source))?;

        let endpoint = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => Ok(url),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("no `listening on` line within {}s", START_TIMEOUT.as_secs())),
        };
        match endpoint {
            Ok(endpoint) => Ok(Moto { endpoint, child, _stdin: stdin }),
            Err(reason) => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(Error::MotoStart {
                    reason: format!(
                        "{reason} (script {}, exit status {status:?}; its stderr is above)",
                        script.display()
                    ),
                })
            }
        }
    }

    /// The emulator of this test binary, started on first use and shared by every test (each test
    /// runs on its own tokio runtime, so this one lives outside them all).
    ///
    /// # Panics
    /// If the emulator cannot start; the message says how to fix it (usually: `make venv`).
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Moto::start().map_err(|e| error_chain(&e))) {
            Ok(moto) => moto,
            Err(message) => panic!("testkit: {message}"),
        }
    }

    /// Base URL of the emulator, e.g. `http://127.0.0.1:41234`: the value of `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The emulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the `listening on URL` line, hands the URL over, then keeps draining stdout to stderr so
/// the emulator never blocks on a full pipe.
fn forward_stdout(stdout: std::process::ChildStdout, tx: mpsc::Sender<Result<String, String>>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let mut announced = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                if !announced {
                    let _ = tx.send(Err("it exited before listening".to_owned()));
                }
                return;
            }
            Ok(_) => {
                let text = line.trim_end();
                if !announced && let Some(url) = text.strip_prefix("listening on ") {
                    announced = true;
                    let _ = tx.send(Ok(url.to_owned()));
                    continue;
                }
                eprintln!("[aws_emulator] {text}");
            }
            Err(e) => {
                if !announced {
                    let _ = tx.send(Err(format!("reading its stdout: {e}")));
                }
                return;
            }
        }
    }
}

/// The interpreter testkit runs the emulator with.
pub fn venv_python() -> PathBuf {
    workspace_root().join(".venv").join("bin").join("python")
}

/// The interpreter of the Sigma virtualenv `<workspace>/.venv-sigma` (pySigma, its DuckDB backend
/// and DuckDB: `make sigma-venv`), for tools/sigma_duckdb.py.
pub fn sigma_venv_python() -> PathBuf {
    workspace_root().join(".venv-sigma").join("bin").join("python")
}
