//! A first client: connects to cable-server the way a browser does (with an
//! `Origin` header and the `actioncable-v1-json` subprotocol), subscribes to
//! a `$pubsub` stream of the default app, and prints every frame it gets.
//!
//! ```sh
//! cargo run --release -p cable-server                                  # terminal 1
//! cargo run --release -p cable-server --example listen -- chat_1       # terminal 2
//! curl -X POST -d '{"stream":"chat_1","data":{"text":"hi"}}' http://127.0.0.1:8080/_broadcast
//! ```
//!
//! Arguments: `STREAM [URL] [ORIGIN]`, by default `chat_1`,
//! `ws://127.0.0.1:8080/cable` and the URL's own origin
//! (`http://127.0.0.1:8080`), which cable-server allows as Rails does
//! (same origin as the `Host`). A client that sends no `Origin` gets a 404,
//! as from Rails: start the server with `--allowed-origin` or
//! `--allow-any-origin` for such clients.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let stream = args.next().unwrap_or_else(|| "chat_1".to_owned());
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/cable".to_owned());
    let mut request = url.as_str().into_client_request()?;
    let origin = match args.next() {
        Some(origin) => origin,
        None => {
            let authority = request.uri().authority().ok_or("the URL has no host")?;
            let scheme = if request.uri().scheme_str() == Some("wss") {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{authority}")
        }
    };
    let headers = request.headers_mut();
    headers.insert("Origin", HeaderValue::from_str(&origin)?);
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("actioncable-v1-json, actioncable-unsupported"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    eprintln!("connected to {url} (Origin: {origin}); subscribing to {stream}");
    let identifier = serde_json::json!({ "channel": "$pubsub", "stream_name": stream }).to_string();
    let subscribe = serde_json::json!({ "command": "subscribe", "identifier": identifier });
    socket.send(Message::text(subscribe.to_string())).await?;
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => println!("{text}"),
            Message::Close(frame) => {
                eprintln!("closed: {frame:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
