"""Regenerates jac_server_frames.jsonl and circle_events.jsonl (run from this directory).

jac_server_frames.jsonl: server frames quoted in ../../../shared/jacref/README.md (where
the README elides a part with "...", the elided url follows the pattern the README gives,
https://errors.pydantic.dev/2.10/v/<type>), and the seed doc's notify payloads.

circle_events.jsonl: one Action Cable frame per Circle event and channel the doc lists,
with payloads built field for field from the doc's TypeScript interfaces, in the
{"event","data"} envelope this crate chose. Compact, keys in interface order."""
import json

def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

U = "https://errors.pydantic.dev/2.10/v/"
jac = [
    ("walker_response", {"status": 200, "reports": [{"echo": 7}, "second"]}),
    ("walker_response_auth", {"status": 200, "reports": [{"echo_auth": 5}]}),
    ("walker_response_empty", {"status": 200, "reports": []}),
    ("walker_response_coerced", {"status": 200, "reports": [5]}),
    ("notify_self_then_reply", {"status": 200, "reports": ["step1", "step2"]}),
    ("walker_error_invalid", {"type": "walker", "error": "Invalid request! Please use valid walker event!"}),
    ("walker_error_auth", {"type": "walker", "error": "Event echo_report_auth requires to be authenticated!"}),
    ("walker_error_unauth", {"type": "walker", "error": "Event echo_report requires to be unauthenticated!"}),
    ("walker_error_access", {"type": "walker", "error": "You don't have access on target entry n::6b028e084b49d9ccc6934a7d!"}),
    ("validation_context_missing", {"error": [{"type": "missing", "loc": ["val"], "msg": "Field required", "input": {}, "url": U + "missing"}]}),
    ("validation_event_missing_walker", {"error": [{"type": "missing", "loc": ["event", "walker", "walker"], "msg": "Field required", "input": {"type": "walker", "response": True}, "url": U + "missing"}]}),
    ("validation_union_tag_invalid", {"error": [{"type": "union_tag_invalid", "loc": ["event"], "msg": "Input tag 'xyz' found using 'type' does not match any of the expected tags: 'connection', 'walker', 'user', 'channel', 'client', 'change_user'", "input": {"type": "xyz"}, "ctx": {"discriminator": "'type'", "tag": "xyz", "expected_tags": "'connection', 'walker', 'user', 'channel', 'client', 'change_user'"}, "url": U + "union_tag_invalid"}]}),
    ("validation_union_tag_not_found", {"error": [{"type": "union_tag_not_found", "loc": ["event"], "msg": "Unable to extract tag using discriminator 'type'", "input": {}, "ctx": {"discriminator": "'type'"}, "url": U + "union_tag_not_found"}]}),
    ("validation_too_short", {"error": [{"type": "too_short", "loc": ["event", "channel", "channel_ids"], "msg": "List should have at least 1 item after validation, not 0", "input": [], "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}, "url": U + "too_short"}]}),
    ("validation_index_loc", {"error": [{"type": "string_type", "loc": ["event", "client", "client_ids", 0], "msg": "Input should be a valid string", "input": 1, "url": U + "string_type"}]}),
    ("validation_token_type", {"error": [{"type": "string_type", "loc": ["event", "change_user", "token"], "msg": "Input should be a valid string", "input": 123, "url": U + "string_type"}]}),
    ("validation_two_items", {"error": [
        {"type": "missing", "loc": ["event", "user", "root_ids"], "msg": "Field required", "input": {"type": "user"}, "url": U + "missing"},
        {"type": "missing", "loc": ["event", "user", "data"], "msg": "Field required", "input": {"type": "user"}, "url": U + "missing"}]}),
    ("validation_not_object", {"error": [{"type": "model_attributes_type", "loc": ["event"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": [1, 2], "url": U + "model_attributes_type"}]}),
    ("traceback_json", {"error": ["Traceback (most recent call last):\n", "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n"]}),
    ("progress_0", {"type": "progress", "progress": "0%"}),
    ("progress_100", {"type": "progress", "progress": "100%"}),
    ("doc_notify_chat", {"type": "chat", "data": {"message": "string"}}),
    ("doc_notify_progress", {"any_field": "for_progress", "progress": "0%", "status": "started"}),
    ("json_fidelity", {"s": "héllo ✓ 😀", "slash": "/", "nul": "\u0000", "html": "</script>", "f": 1.0, "nz": -0.0, "big": 1.5e300, "min": -9223372036854775808, "max": 18446744073709551615}),
]
with open("jac_server_frames.jsonl", "w") as f:
    for name, v in jac:
        # Floats: Python, JavaScript and serde_json write 1.5e+300; orjson (the real
        # server, README item 40) writes 1.5e300, the same value. golden.rs checks both.
        f.write(dumps({"name": name, "frame": dumps(v)}) + "\n")

sender = {"id": 77, "name": "Ada Lovelace", "avatar_url": None}
rich = {"body": {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hi <all> & \"you\""}]}]}}
preview = {"count": 1, "avatars": []}

def json_message(**over):
    m = {"id": 501, "chat_room_uuid": "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10", "chat_room_kind": "direct",
         "chat_room_participant_id": 9001, "body": "Hi <all> & \"you\"", "rich_text_body": rich,
         "sent_at": "2024-10-25T11:17:36.000Z", "created_at": "2024-10-25T11:17:36.000Z", "sender": sender,
         "creation_uuid": "c0ffee00-0000-4000-8000-000000000001", "chat_thread_id": None,
         "parent_message_id": None, "lesson_id": None, "edited_at": None, "replies_count": 0,
         "total_thread_participants_count": 0, "thread_participants_preview": preview,
         "chat_thread_replies_count": 0}
    m.update(over)
    return m

def chat_message(**over):
    m = json_message(**over)
    del m["chat_room_kind"], m["chat_thread_replies_count"]
    return m

room_parent = chat_message(id=400, edited_at="2024-10-25T11:20:00.000Z", replies_count=2, total_thread_participants_count=2, chat_thread_id=31)
thread_parent = {k: v for k, v in room_parent.items() if k not in ("chat_room_uuid", "body", "sent_at")}
thread_parent["chat_room_participant_id"] = "9001"

CR = {"channel": "ChatRoomChannel", "community_member_id": 1234}
NO = {"channel": "NotificationChannel", "community_member_id": 1234}
RM = {"channel": "Chats::RoomChannel", "chat_room_id": 987}
TH = {"channel": "Chats::CommunityMemberThreadsChannel", "community_member_id": 1234}
chat_room = {"id": 987, "uuid": "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10", "identifier": "ada-and-grace",
             "unread_messages_count": 0, "chat_room_kind": "direct", "chat_room_name": "Ada & Grace",
             "chat_room_description": None, "chat_room_show_history": True,
             "other_participants_preview": [{"id": 9002, "name": "Grace Hopper"}],
             "current_participant": {"id": 9001, "muted_at": None}, "last_message": None}
simplified = {"uuid": "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10", "chat_room_name": "Renamed",
              "chat_room_description": "About things", "chat_room_show_history": False,
              "pinned_message": {"id": 501, "body": "pinned"}}
events = [
    ("new_notification", NO, "newNotification", {"id": 3, "action": "mention", "notifiable_type": "Post"}),
    ("update_count", NO, "updateNewNotificationCount", {"new_notifications_count": 5}),
    ("reset_count", NO, "resetNewNotificationCount", {"new_notifications_count": 0}),
    ("chat_room_created", CR, "chatRoomCreated", chat_room),
    ("chat_room_updated", CR, "chatRoomUpdated", simplified),
    ("chat_room_deleted", CR, "chatRoomDeleted", {"chat_room_uuid": "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10"}),
    ("chat_room_read", CR, "chatRoomRead", {"chat_room_uuid": "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10"}),
    ("chat_room_pinned", CR, "chatRoomPinned", {"chat_room_id": 987, "pinned_at": "2024-10-25T11:17:36.000Z"}),
    ("chat_room_unpinned", CR, "chatRoomUnPinned", {"chat_room_id": 987}),
    ("new_message_chat_room", CR, "newMessage", json_message()),
    ("new_message_room", RM, "newMessage", json_message(chat_thread_id=31, parent_message_id=400, chat_thread_replies_count=3)),
    ("chat_room_updated_room", RM, "chatRoomUpdated", simplified),
    ("deleted_message_room", RM, "deletedMessage", {"id": 502, "parent_message": room_parent}),
    ("updated_message_room", RM, "updatedMessage", chat_message(edited_at="2024-10-25T11:19:00.000Z")),
    ("new_message_threads", TH, "newMessage", json_message(chat_thread_id=31, parent_message_id=400, lesson_id=12)),
    ("updated_message_threads", TH, "updatedMessage", chat_message(chat_thread_id=31, parent_message_id=400)),
    ("deleted_message_threads", TH, "deletedMessage", {"id": 503, "parent_message": thread_parent}),
    ("chat_thread_read", TH, "chatThreadRead", {"chat_thread_id": 31}),
    ("unknown_event", CR, "chatRoomArchived", {"chat_room_uuid": "x", "archived": True}),
    ("extra_fields", NO, "updateNewNotificationCount", {"new_notifications_count": 6, "community_id": 1}),
]
with open("circle_events.jsonl", "w") as f:
    for name, ident, event, data in events:
        frame = {"identifier": dumps(ident), "message": {"event": event, "data": data}}
        f.write(dumps({"name": name, "frame": dumps(frame)}) + "\n")
