//! The `cable-server` command. See `cable-server --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cable_server::{credentials_of, serve, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(subject) = &options.mint_token {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ttl = std::time::Duration::from_secs(options.token_ttl_secs);
        let minted = credentials_of(&options)
            .ok()
            .and_then(|credentials| credentials.mint(subject, now, ttl));
        return match minted {
            Some(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("cable-server: --mint-token needs a non-empty --jwt-secret");
                ExitCode::FAILURE
            }
        };
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&options.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cable-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cable-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", options.listen),
            )
        })?;
    let addr = listener.local_addr()?;
    // One machine-readable line on stdout: scripts and tests read the port.
    println!(
        "cable-server listening on http://{addr}{}",
        options.mount_path()
    );
    tracing::info!(%addr, "listening");
    serve(options, listener, shutdown_signal()).await
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("signal received: shutting down");
}
