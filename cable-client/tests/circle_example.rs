//! The `circle` example (a headless Circle client) end to end against
//! `cable-server --app circle`: it subscribes as the doc's connection test
//! does and prints Circle's typed events. The same against Circle's channels
//! on the real Rails server is in `rails.rs`.

mod example_process;
mod in_process;
mod rails_server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_server::Credentials;
use example_process::ExampleProcess;
use in_process::Server;
use serde_json::json;

const SECRET: &str = "circle-example-secret";
const ORIGIN: &str = "https://community.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circle_example_prints_typed_events_from_cable_server() {
    let rooms =
        std::env::temp_dir().join(format!("cable-client-rooms-{}.json", std::process::id()));
    std::fs::write(&rooms, r#"{"chat_rooms": {"7": [42, 43]}}"#).unwrap();
    let server = Server::start(&[
        "--app",
        "circle",
        "--jwt-secret",
        SECRET,
        "--allowed-origin",
        ORIGIN,
        "--circle-rooms",
        rooms.to_str().unwrap(),
    ])
    .await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let token = Credentials::new(vec![], Some(SECRET))
        .unwrap()
        .mint("42", now, Duration::from_secs(3600))
        .unwrap();
    let binary = rails_server::example("circle");
    let url = server.url();
    let mut example = ExampleProcess::start(
        &binary,
        &[
            "--url",
            &url,
            "--token",
            &token,
            "--origin",
            ORIGIN,
            "--member-id",
            "42",
            "--chat-room",
            "7",
        ],
    );
    let wait = Duration::from_secs(20);
    let mut example = tokio::task::spawn_blocking(move || {
        example.expect_line(
            "ChatRoomChannel subscribed (id 42, reconnected: false)",
            wait,
        );
        example.expect_line(
            "Chats::RoomChannel subscribed (id 7, reconnected: false)",
            wait,
        );
        example
    })
    .await
    .unwrap();
    server
        .broadcast(
            "chat-room-channel-42",
            json!({"event": "chatRoomRead", "data": {"chat_room_uuid": "abc"}}),
        )
        .await;
    server
        .broadcast(
            "chat-room-7-channel",
            json!({"event": "chatRoomUnPinned", "data": {"chat_room_id": 7}}),
        )
        .await;
    tokio::task::spawn_blocking(move || {
        example.expect_line(
            r#"ChatRoomChannel chatRoomRead ChatRoomRead(ChatRoomRef { chat_room_uuid: "abc", extra: {} })"#,
            wait,
        );
        // Not an event Chats::RoomChannel carries per Circle's doc: printed
        // as undecodable, with its text.
        example.expect_line(
            r#"Chats::RoomChannel undecodable (event `chatRoomUnPinned` does not travel on Chats::RoomChannel): {"event":"chatRoomUnPinned","data":{"chat_room_id":7}}"#,
            wait,
        );
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&rooms);
}
