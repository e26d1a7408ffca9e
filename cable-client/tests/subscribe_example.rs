//! The README's quick start, end to end: the `subscribe` example against
//! cable-server's default app prints what a `POST /_broadcast` sends, and
//! keeps doing so across a server restart (it resubscribes by itself).

mod example_process;
mod in_process;
mod rails_server;

use std::time::Duration;

use example_process::ExampleProcess;
use in_process::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_example_prints_broadcasts_across_a_restart() {
    let mut server = Server::start(&[]).await;
    let url = server.url();
    let example = ExampleProcess::start(
        &rails_server::example("subscribe"),
        &["chat_1", "--url", &url],
    );
    // Subscribed: the stream's confirmation is on stderr; wait for a
    // broadcast to arrive instead, retrying until the subscription is in.
    let example = deliver_until_printed(&server, example, json!({"text": "hi"})).await;
    server.stop().await;
    server.restart().await;
    deliver_until_printed(&server, example, json!({"text": "again"})).await;
}

/// Broadcasts `data` every 250 ms until the example prints it (at most 40 s).
async fn deliver_until_printed(
    server: &Server,
    mut example: ExampleProcess,
    data: serde_json::Value,
) -> ExampleProcess {
    let expected = data.to_string();
    for _ in 0..160 {
        server.broadcast("chat_1", data.clone()).await;
        let (back, found) = tokio::task::spawn_blocking({
            let expected = expected.clone();
            move || {
                let found = example.try_line(&expected, Duration::from_millis(250));
                (example, found)
            }
        })
        .await
        .unwrap();
        example = back;
        if found {
            return example;
        }
    }
    panic!(
        "the example never printed {expected}; saw {:#?}",
        example.seen
    );
}
