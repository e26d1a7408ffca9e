//! cable-client end to end against the real Rails Action Cable 6.1: the
//! reference server (`../shared/refserver`) and Circle's channels on Rails
//! (`rails/circle.ru`), the `circle` example among them.
//!
//! They need Ruby, ruby-actioncable and puma (the reference server's
//! `start.sh` installs them) and `../shared` beside the checkout, so they
//! are run by their own step of `scripts/test-all`:
//! `cargo build -p cable-client --examples && cargo test -p cable-client --test rails -- --ignored`.

mod example_process;
mod rails_server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_channels::circle::{CircleEvent, CircleIdentifier};
use cable_client::{Client, ClientConfig, Status, SubscriptionEvent, TypedEvent};
use cable_proto::client::StopReason;
use cable_proto::DisconnectReason;
use example_process::ExampleProcess;
use rails_server::{query_value, RailsServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(40);

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

const CHAT_1: &str = r#"{"channel":"ChatChannel","room":"1"}"#;

#[tokio::test]
#[ignore = "needs the Rails reference server: run by scripts/test-all"]
async fn rails_subscribe_perform_receive_reject() {
    let rails = RailsServer::reference();
    let client = Client::connect(ClientConfig::new(rails.url()).token("alice"));
    let mut chat = client.subscribe(CHAT_1).await.unwrap();
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
    rails.get("/broadcast?stream=chat_1&text=from%20rails");
    assert_eq!(
        within("the broadcast", chat.next()).await,
        Some(SubscriptionEvent::Received(
            r#"{"text":"from rails"}"#.to_owned()
        ))
    );
    // GreetingChannel transmits inside `subscribed`: the message comes
    // before the confirmation, and the client passes both on in that order.
    let mut greeting = client
        .subscribe(r#"{"channel":"GreetingChannel"}"#)
        .await
        .unwrap();
    assert_eq!(
        within("the greeting", greeting.next()).await,
        Some(SubscriptionEvent::Received(
            r#"{"greeting":"hello alice"}"#.to_owned()
        ))
    );
    assert_eq!(
        within("its confirmation", greeting.next()).await,
        Some(SubscriptionEvent::Connected { reconnected: false })
    );
    let mut forbidden = client
        .subscribe(r#"{"channel":"ChatChannel","room":"forbidden"}"#)
        .await
        .unwrap();
    assert_eq!(
        within("the rejection", forbidden.next()).await,
        Some(SubscriptionEvent::Rejected)
    );
}

#[tokio::test]
#[ignore = "needs the Rails reference server: run by scripts/test-all"]
async fn rails_restart_and_remote_disconnect_resubscribe_by_themselves() {
    let rails = RailsServer::reference();
    let client = Client::connect(ClientConfig::new(rails.url()).token("bob").jitter_seed(3));
    let mut chat = client.subscribe(CHAT_1).await.unwrap();
    assert_eq!(
        within("the confirmation", chat.next()).await,
        Some(SubscriptionEvent::Connected { reconnected: false })
    );
    // server_restart, reconnect: true.
    rails.get("/restart");
    assert_eq!(
        within("the restart", chat.next()).await,
        Some(SubscriptionEvent::Disconnected {
            will_reconnect: true
        })
    );
    assert_eq!(
        within("the resubscription", chat.next()).await,
        Some(SubscriptionEvent::Connected { reconnected: true })
    );
    // Rails 6.1's remote disconnect closes with no frame at all.
    rails.get("/disconnect?user=bob");
    assert_eq!(
        within("the remote disconnect", chat.next()).await,
        Some(SubscriptionEvent::Disconnected {
            will_reconnect: true
        })
    );
    assert_eq!(
        within("the second resubscription", chat.next()).await,
        Some(SubscriptionEvent::Connected { reconnected: true })
    );
    rails.get("/broadcast?stream=chat_1&text=still%20here");
    assert_eq!(
        within("a broadcast", chat.next()).await,
        Some(SubscriptionEvent::Received(
            r#"{"text":"still here"}"#.to_owned()
        ))
    );
}

#[tokio::test]
#[ignore = "needs the Rails reference server: run by scripts/test-all"]
async fn rails_unauthorized_stops_the_client() {
    let rails = RailsServer::reference();
    let client = Client::connect(ClientConfig::new(rails.url()).token("bad"));
    let status = within(
        "the stop",
        client.wait_for(|s| matches!(s, Status::Stopped(_))),
    )
    .await;
    assert_eq!(
        status,
        Some(Status::Stopped(StopReason::ServerRefused {
            reason: Some(DisconnectReason::Unauthorized)
        }))
    );
}

const SECRET: &str = "rails-circle-secret";
const ORIGIN: &str = "https://community.example";

fn member_token(member: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    cable_server::Credentials::new(vec![], Some(SECRET))
        .unwrap()
        .mint(member, now, Duration::from_secs(3600))
        .unwrap()
}

#[tokio::test]
#[ignore = "needs ruby-actioncable and puma: run by scripts/test-all"]
async fn rails_circle_typed_subscriptions() {
    let rails = RailsServer::circle(SECRET, ORIGIN, r#"{"7": [42, 43]}"#);
    let client = Client::connect(
        ClientConfig::new(rails.url())
            .origin(ORIGIN)
            .token(member_token("42")),
    );
    let mut mine = client
        .subscribe_to(CircleIdentifier::chat_room(42))
        .await
        .unwrap();
    let mut theirs = client
        .subscribe_to(CircleIdentifier::chat_room(43))
        .await
        .unwrap();
    let mut room = client
        .subscribe_to(CircleIdentifier::chats_room(7))
        .await
        .unwrap();
    assert_eq!(
        within("ChatRoomChannel", mine.next()).await,
        Some(TypedEvent::Connected { reconnected: false })
    );
    assert_eq!(
        within("another member's channel", theirs.next()).await,
        Some(TypedEvent::Rejected)
    );
    assert_eq!(
        within("Chats::RoomChannel", room.next()).await,
        Some(TypedEvent::Connected { reconnected: false })
    );
    assert!(
        matches!(client.status(), Status::Connected { sid: Some(ref sid) } if sid.len() == 21),
        "{:?}",
        client.status()
    );
    let body = json!({"event": "chatRoomRead", "data": {"chat_room_uuid": "abc"}}).to_string();
    rails.get(&format!(
        "/publish?stream=chat-room-channel-42&body={}",
        query_value(&body)
    ));
    let Some(TypedEvent::Received(Ok(message))) = within("a typed event", mine.next()).await else {
        panic!("a typed Circle event")
    };
    assert!(
        matches!(&message.event, CircleEvent::ChatRoomRead(read) if read.chat_room_uuid == "abc"),
        "{message:?}"
    );
}

#[tokio::test]
#[ignore = "needs ruby-actioncable and puma: run by scripts/test-all"]
async fn rails_circle_example_prints_typed_events() {
    let rails = RailsServer::circle(SECRET, ORIGIN, r#"{"7": [42]}"#);
    let token = member_token("42");
    let url = rails.url();
    let mut example = ExampleProcess::start(
        &rails_server::example("circle"),
        &[
            "--url",
            &url,
            "--token",
            &token,
            "--origin",
            ORIGIN,
            "--member-id",
            "42",
        ],
    );
    example.expect_line(
        "ChatRoomChannel subscribed (id 42, reconnected: false)",
        WAIT,
    );
    let body = json!({"event": "chatRoomPinned", "data": {"chat_room_id": 7, "pinned_at": "2024-01-01T00:00:00Z"}})
        .to_string();
    rails.get(&format!(
        "/publish?stream=chat-room-channel-42&body={}",
        query_value(&body)
    ));
    example.expect_line(
        r#"ChatRoomChannel chatRoomPinned ChatRoomPinned(ChatRoomPinned { chat_room_id: 7, pinned_at: "2024-01-01T00:00:00Z", extra: {} })"#,
        WAIT,
    );
}
