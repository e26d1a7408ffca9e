//! `Config::publish_upstream`: the application's broadcasts (a perform's
//! outcome, `Server::publish`) come out as `Event::Publish` for the host to
//! carry to every node, instead of being delivered here; the host then
//! delivers them with `broadcast` / `broadcast_except`.

mod common;

use cable_proto::server::{Config, Event, PerformOutcome};
use cable_proto::{JsonText, OriginPolicy};
use common::*;

fn json(text: &str) -> JsonText {
    JsonText::new(text).unwrap()
}

fn host(publish_upstream: bool) -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        publish_upstream,
        ..Config::default()
    })
}

#[test]
fn a_perform_broadcast_comes_out_as_an_event_and_is_delivered_by_the_host() {
    let mut host = host(true);
    let a = host.connect("alice");
    let b = host.connect("bob");
    host.subscribe(a, CHAT, &["room"]);
    host.subscribe(b, CHAT, &["room"]);
    let _ = host.all_frames();
    let _ = host.events();
    host.send(a, &message(CHAT, r#"{"action":"speak"}"#));
    let perform = host.perform();
    let outcome = PerformOutcome::new()
        .transmit(json(r#"{"m":"you"}"#))
        .broadcast("room", json(r#"{"m":"all"}"#))
        .broadcast_except_sender("room", json(r#"{"m":"others"}"#));
    host.server
        .complete_perform(perform.pending, outcome, host.now)
        .unwrap();
    // Only the transmission went out: the broadcasts wait for the host.
    assert_eq!(
        host.all_frames(),
        vec![(a, Out::Text(data_frame(CHAT, r#"{"m":"you"}"#)))]
    );
    let events = host.events();
    assert_eq!(
        events,
        vec![
            Event::Publish {
                stream: "room".into(),
                payload: json(r#"{"m":"all"}"#),
                except: None,
            },
            Event::Publish {
                stream: "room".into(),
                payload: json(r#"{"m":"others"}"#),
                except: Some(a),
            },
        ]
    );
    // The host delivers them (here at once, as cable-server does without
    // Redis).
    for event in events {
        if let Event::Publish {
            stream,
            payload,
            except,
        } = event
        {
            let delivery = match except {
                Some(c) => {
                    host.server
                        .broadcast_except(stream.as_str(), payload.as_str(), c, host.now)
                }
                None => host
                    .server
                    .broadcast(stream.as_str(), payload.as_str(), host.now),
            };
            assert!(delivery.recipients > 0);
        }
    }
    assert_eq!(
        host.all_frames(),
        vec![
            (a, Out::Text(data_frame(CHAT, r#"{"m":"all"}"#))),
            (b, Out::Text(data_frame(CHAT, r#"{"m":"all"}"#))),
            (b, Out::Text(data_frame(CHAT, r#"{"m":"others"}"#))),
        ]
    );
}

#[test]
fn publish_delivers_at_once_when_off_and_reports_when_on() {
    for on in [false, true] {
        let mut host = host(on);
        let a = host.connect("alice");
        host.subscribe(a, CHAT, &["room"]);
        let _ = host.all_frames();
        let _ = host.events();
        let delivery = host
            .server
            .publish("room", &json(r#"{"n":1}"#), None, host.now);
        if on {
            assert_eq!(delivery.recipients, 0);
            assert!(host.all_frames().is_empty());
            assert_eq!(host.events().len(), 1);
        } else {
            assert_eq!(delivery.recipients, 1);
            assert_eq!(
                host.all_frames(),
                vec![(a, Out::Text(data_frame(CHAT, r#"{"n":1}"#)))]
            );
            assert!(host.events().is_empty());
        }
    }
}
