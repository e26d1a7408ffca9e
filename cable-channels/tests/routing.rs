//! The typed publisher (`CircleEvent::publications`): one test per routing rule of the
//! table in `circle`'s docs, with exact streams and exact payload bytes (the payloads
//! and the subscriptions are the golden frames of `circle_events.jsonl`), and a proptest
//! that every publication reaches a subscriber that accepts it.

mod common;

use cable_channels::circle::{
    broadcast_body, decode_frame, CircleChannelKind, CircleEvent, CircleEventName,
    CircleIdentifier, CircleMessage, Concerns, Publication, Room, RouteError,
};
use cable_channels::{ChannelIdentifier, ChannelMessage};
use common::strategies::circle_event;
use common::{jsonl, value};
use proptest::collection::vec;
use proptest::prelude::*;

/// The member and room of every golden frame's identifier.
const MEMBER: u64 = 1234;
const ROOM: u64 = 987;

/// A golden frame of `circle_events.jsonl`: the stream its subscription streams from,
/// the event, and the exact bytes of its `message`.
struct Golden {
    stream: String,
    event: CircleEvent,
    payload: String,
}

fn golden(name: &str) -> Golden {
    let line = jsonl("circle_events.jsonl")
        .into_iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no golden frame {name}"));
    let frame = line["frame"].as_str().unwrap();
    let (id, msg) = decode_frame(frame).unwrap().unwrap();
    // The frame is `{"identifier":"...","message":<payload>}`: cut the payload's bytes.
    let (_, rest) = frame.split_once(r#"","message":"#).unwrap();
    let payload = rest.strip_suffix('}').unwrap().to_owned();
    assert_eq!(value(&payload), value(&msg.encode()), "{name}");
    Golden {
        stream: id.stream_name(),
        event: msg.event,
        payload,
    }
}

fn streams(publications: &[Publication]) -> Vec<&str> {
    publications.iter().map(|p| p.stream.as_str()).collect()
}

/// Routes the golden event, asserts the streams and that every payload is the golden
/// frame's message byte for byte.
#[track_caller]
fn assert_routes(name: &str, concerns: Concerns, expected: &[&str]) {
    let g = golden(name);
    let publications = g.event.publications(&concerns).unwrap();
    assert_eq!(streams(&publications), expected, "{name}");
    for p in &publications {
        assert_eq!(p.payload, g.payload, "{name} on {}", p.stream);
    }
}

fn room(embedded: bool, participants: &[u64]) -> Room {
    Room {
        chat_room_id: ROOM,
        embedded,
        participants: participants.to_vec(),
    }
}

fn message(embedded: bool, participants: &[u64], thread: &[u64]) -> Concerns {
    Concerns::Message {
        room: room(embedded, participants),
        thread_participants: thread.to_vec(),
    }
}

fn room_member(embedded: bool) -> Concerns {
    Concerns::RoomMember {
        community_member_id: MEMBER,
        embedded,
    }
}

// ------------------------------------------------------------ notifications

#[test]
fn notification_events_go_on_the_members_notification_stream() {
    for name in [
        "new_notification",
        "update_count",
        "reset_count",
        "extra_fields",
    ] {
        assert_routes(
            name,
            Concerns::Member(MEMBER),
            &["notification-channel-1234"],
        );
    }
}

// --------------------------------------------------------- chat room events

#[test]
fn chat_room_created_goes_on_the_members_stream_of_a_non_embedded_room_only() {
    assert_routes(
        "chat_room_created",
        room_member(false),
        &["chat-room-channel-1234"],
    );
    assert_routes("chat_room_created", room_member(true), &[]);
}

#[test]
fn chat_room_pinned_and_unpinned_go_on_the_pinning_members_stream_of_a_non_embedded_room() {
    for name in ["chat_room_pinned", "chat_room_unpinned"] {
        assert_routes(name, room_member(false), &["chat-room-channel-1234"]);
        assert_routes(name, room_member(true), &[]);
    }
}

#[test]
fn chat_room_updated_by_a_pin_goes_on_the_pinning_members_stream_of_a_non_embedded_room() {
    assert_routes(
        "chat_room_updated",
        room_member(false),
        &["chat-room-channel-1234"],
    );
    assert_routes("chat_room_updated", room_member(true), &[]);
}

#[test]
fn chat_room_updated_attributes_go_on_the_room_stream_and_a_rename_on_the_members_streams() {
    let attributes = |embedded, renamed| Concerns::RoomAttributes {
        room: room(embedded, &[MEMBER, 5678, MEMBER]),
        renamed,
    };
    assert_routes(
        "chat_room_updated_room",
        attributes(false, true),
        &[
            "chat-room-987-channel",
            "chat-room-channel-1234",
            "chat-room-channel-5678",
        ],
    );
    assert_routes(
        "chat_room_updated_room",
        attributes(false, false),
        &["chat-room-987-channel"],
    );
    assert_routes(
        "chat_room_updated_room",
        attributes(true, true),
        &["chat-room-987-channel"],
    );
    assert_routes(
        "chat_room_updated",
        attributes(false, true),
        &[
            "chat-room-987-channel",
            "chat-room-channel-1234",
            "chat-room-channel-5678",
        ],
    );
}

#[test]
fn chat_room_deleted_goes_on_every_participants_stream_embedded_or_not() {
    for embedded in [false, true] {
        assert_routes(
            "chat_room_deleted",
            Concerns::RoomParticipants(room(embedded, &[5678, MEMBER, 5678])),
            &["chat-room-channel-5678", "chat-room-channel-1234"],
        );
    }
    assert_routes(
        "chat_room_deleted",
        Concerns::RoomParticipants(room(false, &[])),
        &[],
    );
}

#[test]
fn chat_room_read_goes_on_the_readers_stream() {
    assert_routes(
        "chat_room_read",
        Concerns::Member(MEMBER),
        &["chat-room-channel-1234"],
    );
}

// ----------------------------------------------------------- message events

#[test]
fn new_message_not_a_reply_goes_on_the_room_and_the_participants_streams() {
    // Thread participants are not used for a message that is not a reply.
    assert_routes(
        "new_message_chat_room",
        message(false, &[MEMBER, 5678], &[42]),
        &[
            "chat-room-987-channel",
            "chat-room-channel-1234",
            "chat-room-channel-5678",
        ],
    );
}

#[test]
fn new_message_in_an_embedded_room_goes_on_the_room_stream_only() {
    assert_routes(
        "new_message_chat_room",
        message(true, &[MEMBER, 5678], &[]),
        &["chat-room-987-channel"],
    );
}

#[test]
fn new_message_reply_goes_on_the_room_and_the_thread_participants_streams() {
    for name in ["new_message_room", "new_message_threads"] {
        for embedded in [false, true] {
            assert_routes(
                name,
                message(embedded, &[5678], &[MEMBER, 42, MEMBER]),
                &[
                    "chat-room-987-channel",
                    "chat-community-member-1234-threads-channel",
                    "chat-community-member-42-threads-channel",
                ],
            );
        }
    }
}

#[test]
fn updated_message_goes_on_the_room_stream_and_for_a_reply_on_the_thread_streams() {
    assert_routes(
        "updated_message_room",
        message(false, &[5678], &[MEMBER]),
        &["chat-room-987-channel"],
    );
    assert_routes(
        "updated_message_threads",
        message(false, &[5678], &[MEMBER]),
        &[
            "chat-room-987-channel",
            "chat-community-member-1234-threads-channel",
        ],
    );
}

#[test]
fn deleted_message_goes_on_the_room_and_the_thread_participants_streams() {
    for name in ["deleted_message_room", "deleted_message_threads"] {
        assert_routes(
            name,
            message(true, &[5678], &[MEMBER]),
            &[
                "chat-room-987-channel",
                "chat-community-member-1234-threads-channel",
            ],
        );
        assert_routes(
            name,
            message(false, &[5678], &[]),
            &["chat-room-987-channel"],
        );
    }
}

#[test]
fn chat_thread_read_goes_on_the_readers_threads_stream() {
    assert_routes(
        "chat_thread_read",
        Concerns::Member(MEMBER),
        &["chat-community-member-1234-threads-channel"],
    );
}

#[test]
fn every_golden_frame_is_what_its_subscriber_receives() {
    let cases = [
        ("new_notification", Concerns::Member(MEMBER)),
        ("update_count", Concerns::Member(MEMBER)),
        ("reset_count", Concerns::Member(MEMBER)),
        ("extra_fields", Concerns::Member(MEMBER)),
        ("chat_room_created", room_member(false)),
        ("chat_room_updated", room_member(false)),
        (
            "chat_room_deleted",
            Concerns::RoomParticipants(room(false, &[MEMBER])),
        ),
        ("chat_room_read", Concerns::Member(MEMBER)),
        ("chat_room_pinned", room_member(false)),
        ("chat_room_unpinned", room_member(false)),
        ("new_message_chat_room", message(false, &[MEMBER], &[])),
        ("new_message_room", message(false, &[], &[])),
        (
            "chat_room_updated_room",
            Concerns::RoomAttributes {
                room: room(false, &[]),
                renamed: false,
            },
        ),
        ("deleted_message_room", message(false, &[], &[])),
        ("updated_message_room", message(false, &[], &[])),
        ("new_message_threads", message(false, &[], &[MEMBER])),
        ("updated_message_threads", message(false, &[], &[MEMBER])),
        ("deleted_message_threads", message(false, &[], &[MEMBER])),
        ("chat_thread_read", Concerns::Member(MEMBER)),
    ];
    assert_eq!(
        cases.len() + 1,
        jsonl("circle_events.jsonl").len(),
        "all but unknown_event"
    );
    for (name, concerns) in cases {
        let g = golden(name);
        let publications = g.event.publications(&concerns).unwrap();
        let to_subscriber: Vec<_> = publications
            .iter()
            .filter(|p| p.stream == g.stream)
            .collect();
        assert_eq!(
            to_subscriber.len(),
            1,
            "{name}: {:?}",
            streams(&publications)
        );
        assert_eq!(to_subscriber[0].payload, g.payload, "{name}");
    }
}

// ------------------------------------------------------------------- errors

#[test]
fn concerns_of_the_wrong_kind_are_a_mismatch() {
    let err = golden("new_message_chat_room")
        .event
        .publications(&Concerns::Member(MEMBER))
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::Mismatch {
            event: CircleEventName::NewMessage,
            given: "Concerns::Member",
            expected: "Concerns::Message",
        }
    );
    assert_eq!(
        err.to_string(),
        "`newMessage` is routed by Concerns::Message, not by Concerns::Member"
    );
    let err = golden("chat_room_updated")
        .event
        .publications(&Concerns::RoomParticipants(room(false, &[MEMBER])))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`chatRoomUpdated` is routed by Concerns::RoomMember or Concerns::RoomAttributes, not by Concerns::RoomParticipants"
    );
}

#[test]
fn unknown_events_have_no_route() {
    let err = golden("unknown_event")
        .event
        .publications(&Concerns::Member(MEMBER))
        .unwrap_err();
    assert_eq!(err, RouteError::UnknownEvent("chatRoomArchived".into()));
}

// ---------------------------------------------------------------- transport

#[test]
fn broadcast_body_carries_each_payload_as_a_json_string() {
    let publications = golden("chat_thread_read")
        .event
        .publications(&Concerns::Member(MEMBER))
        .unwrap();
    assert_eq!(
        broadcast_body(&publications),
        r#"[{"stream":"chat-community-member-1234-threads-channel","data":"{\"event\":\"chatThreadRead\",\"data\":{\"chat_thread_id\":31}}"}]"#
    );
    assert_eq!(broadcast_body(&[]), "[]");
}

#[test]
fn stream_names_parse_back_to_their_channel() {
    for kind in CircleChannelKind::ALL {
        for id in [0, 7, MEMBER, u64::MAX] {
            assert_eq!(
                CircleChannelKind::from_stream_name(&kind.stream_name(id)),
                Some((kind, id))
            );
        }
    }
    for other in [
        "",
        "chat-room-channel-",
        "chat-room-channel-01",
        "chat-room-channel-+1",
        "chat-room-channel-1x",
        "chat-room-1-2-channel",
        "notification-channel-18446744073709551616",
        "chat_1",
    ] {
        assert_eq!(CircleChannelKind::from_stream_name(other), None, "{other}");
    }
}

// ----------------------------------------------------------------- proptest

fn ids() -> impl Strategy<Value = Vec<u64>> {
    // Few distinct ids, so repeats happen.
    vec(0u64..8, 0..5)
}

fn room_strategy() -> impl Strategy<Value = Room> {
    (any::<u64>(), any::<bool>(), ids()).prop_map(|(chat_room_id, embedded, participants)| Room {
        chat_room_id,
        embedded,
        participants,
    })
}

/// Concerns of any kind.
fn any_concerns() -> BoxedStrategy<Concerns> {
    concerns_for(&CircleEvent::Unknown {
        event: "any".into(),
        data: cable_channels::Value::Null,
    })
}

/// Concerns of the kind `event` takes (any kind for an unknown event).
fn concerns_for(event: &CircleEvent) -> BoxedStrategy<Concerns> {
    use CircleEventName as E;
    let member = any::<u64>().prop_map(Concerns::Member);
    let room_member = (any::<u64>(), any::<bool>()).prop_map(|(community_member_id, embedded)| {
        Concerns::RoomMember {
            community_member_id,
            embedded,
        }
    });
    let attributes = (room_strategy(), any::<bool>())
        .prop_map(|(room, renamed)| Concerns::RoomAttributes { room, renamed });
    let participants = room_strategy().prop_map(Concerns::RoomParticipants);
    let message =
        (room_strategy(), ids()).prop_map(|(room, thread_participants)| Concerns::Message {
            room,
            thread_participants,
        });
    match event.known_name() {
        Some(
            E::NewNotification
            | E::UpdateNewNotificationCount
            | E::ResetNewNotificationCount
            | E::ChatRoomRead
            | E::ChatThreadRead,
        ) => member.boxed(),
        Some(E::ChatRoomCreated | E::ChatRoomPinned | E::ChatRoomUnPinned) => room_member.boxed(),
        Some(E::ChatRoomUpdated) => prop_oneof![room_member, attributes].boxed(),
        Some(E::ChatRoomDeleted) => participants.boxed(),
        Some(E::NewMessage | E::UpdatedMessage | E::DeletedMessage) => message.boxed(),
        None => prop_oneof![member, room_member, attributes, participants, message].boxed(),
    }
}

fn routable() -> impl Strategy<Value = (CircleEvent, Concerns)> {
    circle_event().prop_flat_map(|event| {
        let concerns = concerns_for(&event);
        (Just(event), concerns)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every publication goes on a stream some channel streams from, of a channel that
    /// allows the event, and its payload decodes back to the event, there and inside
    /// the frame a subscriber receives.
    #[test]
    fn every_publication_reaches_a_subscriber_that_accepts_it((event, concerns) in routable()) {
        let publications = match event.publications(&concerns) {
            Err(RouteError::UnknownEvent(name)) => {
                prop_assert!(event.known_name().is_none());
                prop_assert_eq!(name, event.name());
                return Ok(());
            }
            other => other.unwrap(),
        };
        let name = event.known_name().unwrap();
        let mut seen = std::collections::HashSet::new();
        for p in &publications {
            prop_assert!(seen.insert(p.stream.clone()), "stream twice: {}", p.stream);
            let (kind, id) = CircleChannelKind::from_stream_name(&p.stream)
                .ok_or_else(|| TestCaseError::fail(format!("no channel streams {}", p.stream)))?;
            prop_assert_eq!(kind.stream_name(id), p.stream.clone());
            prop_assert!(kind.allows(name), "{} not allowed on {}", name, kind);
            prop_assert_eq!(p.payload.clone(), event.encode());
            prop_assert_eq!(p.payload.clone(), CircleMessage::new(event.clone()).encode());
            let back = CircleMessage::decode_for(kind, &p.payload).unwrap();
            prop_assert_eq!(&back.event, &event);
            prop_assert!(back.extra.is_empty());
            // The frame the subscriber of that stream receives.
            let subscription = CircleIdentifier::new(kind, id);
            let frame = ChannelMessage {
                identifier: subscription.identifier(),
                message: serde_json::from_str(&p.payload).unwrap(),
            };
            let (on, msg) = decode_frame(&frame.encode()).unwrap().unwrap();
            prop_assert_eq!(on.stream_name(), p.stream.clone());
            prop_assert_eq!(msg.event, event.clone());
        }
    }

    /// Concerns of any kind: the event takes those of the table, and any other kind is
    /// a mismatch naming the event.
    #[test]
    fn concerns_of_another_kind_are_a_mismatch(event in circle_event(), concerns in any_concerns()) {
        let Some(name) = event.known_name() else { return Ok(()) };
        match event.publications(&concerns) {
            Ok(_) => prop_assert!(takes(name, &concerns), "{} routed by {:?}", name, concerns),
            Err(RouteError::Mismatch { event: e, .. }) => {
                prop_assert_eq!(e, name);
                prop_assert!(!takes(name, &concerns));
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

/// The routing table's "concerns" column, written again.
fn takes(event: CircleEventName, concerns: &Concerns) -> bool {
    use CircleEventName as E;
    match concerns {
        Concerns::Member(_) => matches!(
            event,
            E::NewNotification
                | E::UpdateNewNotificationCount
                | E::ResetNewNotificationCount
                | E::ChatRoomRead
                | E::ChatThreadRead
        ),
        Concerns::RoomMember { .. } => matches!(
            event,
            E::ChatRoomCreated | E::ChatRoomPinned | E::ChatRoomUnPinned | E::ChatRoomUpdated
        ),
        Concerns::RoomAttributes { .. } => event == E::ChatRoomUpdated,
        Concerns::RoomParticipants(_) => event == E::ChatRoomDeleted,
        Concerns::Message { .. } => {
            matches!(event, E::NewMessage | E::UpdatedMessage | E::DeletedMessage)
        }
    }
}

/// Every (channel, event) pair the doc lists is reached by some routing rule.
#[test]
fn every_channel_and_event_of_the_doc_is_published_to() {
    let concerns = [
        Concerns::Member(MEMBER),
        room_member(false),
        Concerns::RoomAttributes {
            room: room(false, &[MEMBER]),
            renamed: true,
        },
        Concerns::RoomParticipants(room(false, &[MEMBER])),
        message(false, &[MEMBER], &[MEMBER]),
    ];
    let mut reached = std::collections::HashSet::new();
    for line in jsonl("circle_events.jsonl") {
        let (_, msg) = decode_frame(line["frame"].as_str().unwrap())
            .unwrap()
            .unwrap();
        let Some(name) = msg.event.known_name() else {
            continue;
        };
        for c in &concerns {
            for p in msg.event.publications(c).unwrap_or_default() {
                let (kind, _) = CircleChannelKind::from_stream_name(&p.stream).unwrap();
                reached.insert((kind, name));
            }
        }
    }
    for kind in CircleChannelKind::ALL {
        for &event in kind.events() {
            assert!(
                reached.contains(&(kind, event)),
                "{event} never published on {kind}"
            );
        }
    }
}
