//! cable-client end to end against cable-server (in process): subscribe,
//! receive a broadcast, perform, resubscribe by itself after a server
//! restart, refresh an expired token with the credential callback
//! (`--app circle`), stop on a server without the subprotocol, explain a 404.

mod in_process;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_channels::circle::{CircleEvent, CircleIdentifier};
use cable_client::{Client, ClientConfig, PubSubStream, Status, SubscriptionEvent, TypedEvent};
use cable_proto::client::StopReason;
use cable_server::Credentials;
use in_process::{within, Server};
use serde_json::json;

#[tokio::test]
async fn subscribes_receives_a_broadcast_and_performs() {
    let server = Server::start(&["--app", "reference"]).await;
    let client = Client::connect(ClientConfig::new(server.url()).token("alice"));
    let mut chat = client
        .subscribe(r#"{"channel":"ChatChannel","room":"1"}"#)
        .await
        .unwrap();
    assert_eq!(
        within("the confirmation", chat.next()).await,
        Some(SubscriptionEvent::Connected { reconnected: false })
    );
    let data = json!({"text": "hello"});
    chat.perform("speak", data.as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(
        within("the speak broadcast", chat.next()).await,
        Some(SubscriptionEvent::Received(
            r#"{"text":"hello","from":"alice"}"#.to_owned()
        ))
    );
    server
        .broadcast("chat_1", json!({"text": "from curl"}))
        .await;
    assert_eq!(
        within("the HTTP broadcast", chat.next()).await,
        Some(SubscriptionEvent::Received(
            r#"{"text":"from curl"}"#.to_owned()
        ))
    );
    // A rejected subscription ends; the other one carries on.
    let mut forbidden = client
        .subscribe(r#"{"channel":"ChatChannel","room":"forbidden"}"#)
        .await
        .unwrap();
    assert_eq!(
        within("the rejection", forbidden.next()).await,
        Some(SubscriptionEvent::Rejected)
    );
    assert_eq!(forbidden.next().await, None);
}

#[tokio::test]
async fn resubscribes_by_itself_after_a_server_restart() {
    let mut server = Server::start(&[]).await;
    let client = Client::connect(ClientConfig::new(server.url()).jitter_seed(1));
    let mut stream = client
        .subscribe_to(PubSubStream("room_9".into()))
        .await
        .unwrap();
    assert_eq!(
        within("the confirmation", stream.next()).await,
        Some(TypedEvent::Connected { reconnected: false })
    );
    server.stop().await;
    assert_eq!(
        within("the disconnect", stream.next()).await,
        Some(TypedEvent::Disconnected {
            will_reconnect: true
        })
    );
    server.restart().await;
    assert_eq!(
        within("the resubscription", stream.next()).await,
        Some(TypedEvent::Connected { reconnected: true })
    );
    assert!(matches!(client.status(), Status::Connected { .. }));
    server
        .broadcast("room_9", json!({"after": "restart"}))
        .await;
    assert_eq!(
        within("a broadcast after the restart", stream.next()).await,
        Some(TypedEvent::Received(Ok(json!({"after": "restart"}))))
    );
}

const SECRET: &str = "client-test-secret";
const ORIGIN: &str = "https://community.example";

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[tokio::test]
async fn refreshes_an_expired_token_with_the_callback_and_resubscribes() {
    let server = Server::start(&[
        "--app",
        "circle",
        "--jwt-secret",
        SECRET,
        "--allowed-origin",
        ORIGIN,
    ])
    .await;
    let credentials = Credentials::new(vec![], Some(SECRET)).unwrap();
    let short = credentials
        .mint("42", unix_now(), Duration::from_secs(2))
        .unwrap();
    let refreshed = Arc::new(AtomicUsize::new(0));
    let calls = refreshed.clone();
    let config = ClientConfig::new(server.url())
        .origin(ORIGIN)
        .token(short)
        .on_token_expired(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let fresh = Credentials::new(vec![], Some(SECRET)).unwrap().mint(
                "42",
                unix_now(),
                Duration::from_secs(3600),
            );
            async move { fresh }
        });
    let client = Client::connect(config);
    let mut rooms = client
        .subscribe_to(CircleIdentifier::chat_room(42))
        .await
        .unwrap();
    assert_eq!(
        within("the confirmation", rooms.next()).await,
        Some(TypedEvent::Connected { reconnected: false })
    );
    let Status::Connected {
        sid: Some(first_sid),
    } = client.status()
    else {
        panic!("a welcome with a sid: {:?}", client.status())
    };
    // The token expires on the live connection: token_expired, the callback,
    // a new connection with the fresh token, the subscription again.
    assert_eq!(
        within("the expiry", rooms.next()).await,
        Some(TypedEvent::Disconnected {
            will_reconnect: true
        })
    );
    assert_eq!(
        within("the resubscription", rooms.next()).await,
        Some(TypedEvent::Connected { reconnected: true })
    );
    assert_eq!(refreshed.load(Ordering::SeqCst), 1);
    let Status::Connected {
        sid: Some(second_sid),
    } = client.status()
    else {
        panic!("welcomed again: {:?}", client.status())
    };
    assert_ne!(first_sid, second_sid);
    server
        .broadcast(
            "chat-room-channel-42",
            json!({"event": "chatRoomRead", "data": {"chat_room_uuid": "abc"}}),
        )
        .await;
    let Some(TypedEvent::Received(Ok(message))) = within("a typed event", rooms.next()).await
    else {
        panic!("a typed Circle event")
    };
    let CircleEvent::ChatRoomRead(read) = message.event else {
        panic!("chatRoomRead: {:?}", message.event)
    };
    assert_eq!(read.chat_room_uuid, "abc");
}

#[tokio::test]
async fn an_expired_token_without_a_callback_stops() {
    let server = Server::start(&[
        "--app",
        "circle",
        "--jwt-secret",
        SECRET,
        "--allowed-origin",
        ORIGIN,
    ])
    .await;
    let credentials = Credentials::new(vec![], Some(SECRET)).unwrap();
    let short = credentials
        .mint("42", unix_now(), Duration::from_secs(2))
        .unwrap();
    let client = Client::connect(ClientConfig::new(server.url()).origin(ORIGIN).token(short));
    let _rooms = client
        .subscribe_to(CircleIdentifier::chat_room(42))
        .await
        .unwrap();
    let status = within(
        "the stop",
        client.wait_for(|s| matches!(s, Status::Stopped(_))),
    )
    .await;
    assert_eq!(
        status,
        Some(Status::Stopped(StopReason::CredentialUnavailable))
    );
}

#[tokio::test]
async fn a_foreign_origin_gets_a_404_and_the_status_says_why() {
    let server = Server::start(&[]).await;
    let client =
        Client::connect(ClientConfig::new(server.url()).origin("https://elsewhere.example"));
    let status = within(
        "the refusal",
        client.wait_for(|s| matches!(s, Status::Disconnected { error: Some(_) })),
    )
    .await;
    let Some(Status::Disconnected { error: Some(error) }) = status else {
        unreachable!()
    };
    assert!(error.contains("404"), "{error}");
    assert!(error.contains("Origin"), "{error}");
}

#[tokio::test]
async fn a_server_that_chooses_no_subprotocol_stops_the_client() {
    // A bare WebSocket server (tungstenite's accept): it upgrades without
    // choosing a subprotocol, as an old server would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    use futures_util::StreamExt;
                    while ws.next().await.is_some() {}
                }
            });
        }
    });
    let client = Client::connect(ClientConfig::new(format!("ws://{addr}/cable")));
    let status = within(
        "the stop",
        client.wait_for(|s| matches!(s, Status::Stopped(_))),
    )
    .await;
    assert_eq!(
        status,
        Some(Status::Stopped(StopReason::UnsupportedProtocol {
            subprotocol: None
        }))
    );
}
