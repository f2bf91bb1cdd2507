//! The `compliance-sim` binary: the simulator as a separate process for the demo and the
//! end-to-end tests.
//!
//! Contract with harnesses: exactly one line `listening on http://HOST:PORT` on stdout,
//! flushed once the socket is bound; logs go to stderr; SIGTERM or ctrl-c ends it cleanly
//! (exit 0) after in-flight requests are answered. Bad arguments exit 2 with the problems.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use compliance_sim::Simulator;
use compliance_sim::cli::{self, Command};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(error) => {
            eprintln!("{error}\n\nrun compliance-sim --help for usage");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    match run(*options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "compliance-sim failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: cli::RunOptions) -> std::io::Result<()> {
    let sim = Simulator::new(options.config);
    if let Some(spec) = &options.generate {
        let ids = sim.generate(spec);
        tracing::info!(count = ids.len(), from = %spec.from, to = %spec.to, "generated activities");
    }
    let listener = TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}")?;
        stdout.flush()?;
    }
    tracing::info!(%address, seed = sim.config().seed, "serving");
    sim.serve_until(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on ctrl-c or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
