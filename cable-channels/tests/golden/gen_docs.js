// Regenerates docs.jsonl: the examples of ../../../shared/seeds/*.md, rendered the way
// the docs' own JavaScript renders them (JSON.stringify), plus the docs' JSON blocks
// verbatim. Run: node gen_docs.js > docs.jsonl
// Each line: {"name", "decoder", "frame", "exact"}; exact=true means the encoder must
// reproduce the bytes, false means the JSON value (the text is a pretty-printed doc block).
const out = [];
const add = (name, decoder, frame, exact = true) => out.push({ name, decoder, frame, exact });

// ---- Circle: the doc's subscribeMessage, for each channel (params: see circle.rs)
const sub = (identifier) => JSON.stringify({ command: "subscribe", identifier: JSON.stringify(identifier) });
add("circle.identifier.chat_room", "circle_identifier", JSON.stringify({ channel: "ChatRoomChannel", community_member_id: 1234 }));
add("circle.identifier.notification", "circle_identifier", JSON.stringify({ channel: "NotificationChannel", community_member_id: 1234 }));
add("circle.identifier.chats_room", "circle_identifier", JSON.stringify({ channel: "Chats::RoomChannel", chat_room_id: 987 }));
add("circle.identifier.threads", "circle_identifier", JSON.stringify({ channel: "Chats::CommunityMemberThreadsChannel", community_member_id: 1234 }));
add("circle.subscribe.chat_room", "circle_subscribe", sub({ channel: "ChatRoomChannel", community_member_id: 1234 }));
add("circle.subscribe.notification", "circle_subscribe", sub({ channel: "NotificationChannel", community_member_id: 1234 }));
add("circle.subscribe.chats_room", "circle_subscribe", sub({ channel: "Chats::RoomChannel", chat_room_id: 987 }));
add("circle.subscribe.threads", "circle_subscribe", sub({ channel: "Chats::CommunityMemberThreadsChannel", community_member_id: 1234 }));
// The doc's console output, as the JSON the server sent (COMMUNITY_MEMBER_ID = 1234).
add("circle.confirm_subscription", "channel_message", JSON.stringify({ identifier: JSON.stringify({ channel: "ChatRoomChannel", community_member_id: 1234 }), type: "confirm_subscription" }));
add("circle.welcome", "channel_message", JSON.stringify({ type: "welcome", sid: "JnehncGjAQuLBIBoImSMk" }));
add("circle.ping", "channel_message", JSON.stringify({ type: "ping", message: 1729855056 }));

// ---- platformOS
const room = { channel: "conversate", room_id: 12 };
const roomStr = { channel: "conversate", room_id: "12" };
add("platformos.identifier.number", "conversate_identifier", JSON.stringify(room));
add("platformos.identifier.string", "conversate_identifier", JSON.stringify(roomStr));
add("platformos.subscribe", "conversate_subscribe", sub(room));
const messageData = {
  message: "Hello &lt;b&gt;there&lt;/b&gt;",
  author_id: 2,
  sender_name: "Some Sender",
  created_at: new Date(Date.UTC(2024, 1, 1, 10, 30, 0)),
  create: true,
};
add("platformos.message", "conversate_message", JSON.stringify(messageData));
// Rails JS: subscription.send(data) -> consumer.send({command:"message", identifier, data: JSON.stringify(data)})
add("platformos.send", "conversate_send", JSON.stringify({ command: "message", identifier: JSON.stringify(room), data: JSON.stringify(messageData) }));
// The GraphQL mutation's payload
add("platformos.graphql_payload", "conversate_message", JSON.stringify({ message: "Some message", author_id: 2, sender_name: "Some Sender", created_at: "2030-07-01 10:30:00", create: true }));
// What subscribers receive: {"identifier", "message": payload}
add("platformos.received", "channel_message", JSON.stringify({ identifier: JSON.stringify(roomStr), message: { message: "Some message", author_id: 2, sender_name: "Some Sender", created_at: "2030-07-01 10:30:00", create: true } }));

// ---- BuddyBoss: the React/Flutter clients' JSON.stringify/jsonEncode calls
add("buddyboss.react.send_message", "buddyboss", JSON.stringify({ type: "send_message", recipientId: "RECIPIENT_ID", message: "Hello, this is a message.", threadId: "THREAD_ID", token: "YOUR_API_TOKEN" }));
add("buddyboss.react.typing", "buddyboss", JSON.stringify({ type: "typing", threadId: "THREAD_ID" }));

// ---- Jac Cloud: the doc's "Publishing Events" JavaScript
add("jac.js.walker", "jac_client", JSON.stringify({ type: "walker", walker: "your_walker_name", response: true, context: {} }));
add("jac.js.client", "jac_client", JSON.stringify({ type: "client", client_ids: ["target client_id from connection event"], data: { type: "chat", data: { any_field: "any_value" } } }));
add("jac.js.channel", "jac_client", JSON.stringify({ type: "channel", channel_ids: ["target channel_id from connection event"], data: { type: "chat", data: { any_field: "any_value" } } }));
add("jac.js.user", "jac_client", JSON.stringify({ type: "user", root_ids: ["target root_id from connection event"], data: { type: "chat", data: { any_field: "any_value" } } }));
add("jac.js.connection", "jac_client", JSON.stringify({ type: "connection" }));
add("jac.js.change_user", "jac_client", JSON.stringify({ type: "change_user", token: "Bearer {{user's token}}" }));

for (const o of out) console.log(JSON.stringify(o));
