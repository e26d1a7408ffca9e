//! A headless Circle client: the Circle doc's WebSockets connection test
//! (`Origin` and `Authorization: Bearer` headers, a subscription to
//! `ChatRoomChannel` for the token's community member) in Rust, printing
//! Circle's typed events as they come, one a line on stdout:
//!
//! ```text
//! ChatRoomChannel newMessage NewMessage(JsonMessage { … })
//! ```
//!
//! ```sh
//! cargo run -p cable-client --example circle -- --url wss://app.circle.so/cable \
//!   --token "$TOKEN" --origin https://your-whitelisted-domain.com --member-id 42
//! ```
//!
//! `wss://` needs the `tls` feature (`--features tls`); against a local
//! `cable-server --app circle` use `ws://127.0.0.1:8080/cable`. Member tokens
//! expire (Circle: after an hour): with `--token-command CMD` the client runs
//! `sh -c CMD` on `token_expired` and reconnects with the token it prints.

use std::process::Stdio;

use cable_channels::circle::CircleIdentifier;
use cable_client::{Client, ClientConfig, TypedEvent, TypedSubscription};
use clap::Parser;
use tokio::sync::mpsc;

/// A headless Circle client that prints typed events.
#[derive(Parser)]
struct Args {
    /// Circle's WebSocket URL.
    #[arg(long)]
    url: String,
    /// The headless member access token.
    #[arg(long)]
    token: String,
    /// One of the community's whitelisted domains.
    #[arg(long)]
    origin: String,
    /// The community member who owns the token.
    #[arg(long)]
    member_id: u64,
    /// Also subscribe to NotificationChannel and
    /// Chats::CommunityMemberThreadsChannel.
    #[arg(long)]
    all_member_channels: bool,
    /// Also subscribe to Chats::RoomChannel for this chat room (repeatable).
    #[arg(long = "chat-room")]
    chat_rooms: Vec<u64>,
    /// A shell command that prints a fresh token, run on `token_expired`.
    #[arg(long)]
    token_command: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "cable_client=info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = ClientConfig::new(&args.url)
        .origin(&args.origin)
        .token(&args.token);
    if let Some(command) = args.token_command.clone() {
        config = config.on_token_expired(move || fresh_token(command.clone()));
    }
    let client = Client::connect(config);

    let mut channels = vec![CircleIdentifier::chat_room(args.member_id)];
    if args.all_member_channels {
        channels.push(CircleIdentifier::notification(args.member_id));
        channels.push(CircleIdentifier::community_member_threads(args.member_id));
    }
    channels.extend(
        args.chat_rooms
            .iter()
            .map(|id| CircleIdentifier::chats_room(*id)),
    );

    // One task per subscription, every line through one printer.
    let (lines, mut printed) = mpsc::unbounded_channel::<String>();
    for channel in channels {
        let Ok(subscription) = client.subscribe_to(channel).await else {
            eprintln!("the client stopped");
            std::process::exit(1);
        };
        tokio::spawn(print_events(subscription, lines.clone()));
    }
    drop(lines);
    while let Some(line) = printed.recv().await {
        println!("{line}");
    }
    eprintln!("stopped: {:?}", client.status());
    std::process::exit(1);
}

async fn print_events(
    mut subscription: TypedSubscription<CircleIdentifier>,
    lines: mpsc::UnboundedSender<String>,
) {
    let name = subscription.channel().kind.channel_name();
    let id = subscription.channel().id;
    while let Some(event) = subscription.next().await {
        let line = match event {
            TypedEvent::Connected { reconnected } => {
                format!("{name} subscribed (id {id}, reconnected: {reconnected})")
            }
            TypedEvent::Received(Ok(message)) => {
                format!("{name} {} {:?}", message.event.name(), message.event)
            }
            TypedEvent::Received(Err((error, text))) => {
                format!("{name} undecodable ({error}): {text}")
            }
            TypedEvent::Disconnected { will_reconnect } => {
                format!("{name} disconnected (reconnecting: {will_reconnect})")
            }
            TypedEvent::Rejected => format!("{name} rejected (id {id})"),
            _ => continue,
        };
        if lines.send(line).is_err() {
            return;
        }
    }
}

/// Runs the token command; its trimmed stdout is the new token.
async fn fresh_token(command: String) -> Option<String> {
    let output = tokio::process::Command::new("sh")
        .args(["-c", &command])
        .stderr(Stdio::inherit())
        .output()
        .await
        .ok()?;
    let token = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !token.is_empty()).then_some(token)
}
