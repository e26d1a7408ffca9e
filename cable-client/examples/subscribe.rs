//! The quick start's client: subscribes to a public stream of cable-server's
//! default app (`{"channel":"$pubsub","stream_name":STREAM}`) and prints every
//! message on stdout, one JSON text a line; what happens to the connection
//! goes to stderr. It reconnects and resubscribes by itself when the server
//! restarts.
//!
//! ```sh
//! cargo run --release -p cable-server                                # terminal 1
//! cargo run --release -p cable-client --example subscribe -- chat_1  # terminal 2
//! curl -X POST -d '{"stream":"chat_1","data":{"text":"hi"}}' http://127.0.0.1:8080/_broadcast
//! ```
//!
//! It sends the URL's own origin as `Origin` (`http://127.0.0.1:8080`), which
//! cable-server allows as Rails does (same origin as `Host`); `--origin`
//! sends another one.

use cable_client::{Client, ClientConfig, PubSubStream, TypedEvent};
use clap::Parser;

/// Subscribes to a `$pubsub` stream and prints what it receives.
#[derive(Parser)]
struct Args {
    /// The stream.
    #[arg(default_value = "chat_1")]
    stream: String,
    /// The server's Action Cable URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/cable")]
    url: String,
    /// The `Origin` header (default: the URL's own origin).
    #[arg(long)]
    origin: Option<String>,
    /// A bearer token (`--token` / `--jwt-secret` servers).
    #[arg(long)]
    token: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "cable_client=warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = ClientConfig::new(&args.url);
    config.origin = args.origin;
    config.token = args.token;
    let client = Client::connect(config);
    let Ok(mut stream) = client.subscribe_to(PubSubStream(args.stream.clone())).await else {
        eprintln!("the client stopped");
        std::process::exit(1);
    };
    while let Some(event) = stream.next().await {
        match event {
            TypedEvent::Connected { reconnected } => {
                let again = if reconnected { " again" } else { "" };
                eprintln!("subscribed{again} to {} at {}", args.stream, args.url);
            }
            TypedEvent::Received(Ok(message)) => println!("{message}"),
            TypedEvent::Received(Err((error, text))) => eprintln!("undecodable ({error}): {text}"),
            TypedEvent::Disconnected { will_reconnect } => {
                eprintln!("disconnected; reconnecting: {will_reconnect}");
                if !will_reconnect {
                    break;
                }
            }
            TypedEvent::Rejected => {
                eprintln!("the server rejected the subscription");
                std::process::exit(1);
            }
            _ => {}
        }
    }
    eprintln!("stopped: {:?}", client.status());
    std::process::exit(1);
}
