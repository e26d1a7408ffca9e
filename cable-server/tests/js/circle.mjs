// Circle's documented WebSocket client (../shared/seeds/circle-websockets.md,
// "WebSockets Connection Test"), with the `ws` package as in the doc, against
// `cable-server --app circle`. The Rust test tests/circle.rs starts the
// server and mints the tokens; this script gets them from the environment:
//
//   CIRCLE_URL      ws://127.0.0.1:PORT/cable
//   CIRCLE_ORIGIN   the allowed origin
//   TOKEN_42        a member token of community member 42 (valid 1 h)
//   TOKEN_43        a member token of community member 43 (valid 1 h)
//   TOKEN_SHORT     a token of member 42 expiring at EXP_SHORT (Unix s)
//   TOKEN_FOREIGN   a token signed with another secret
//   TOKEN_EXPIRED   a token whose exp has passed
//
// Prints "N passed, M failed" and exits 0 when every step passed.

import assert from "node:assert/strict";
import WebSocket from "ws";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}`);
    process.exit(2);
  }
  return value;
};
const URL = env("CIRCLE_URL");
const ORIGIN = env("CIRCLE_ORIGIN");
const HTTP = URL.replace(/^ws/, "http").replace(/\/cable$/, "");

let passed = 0;
let failed = 0;
async function step(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error.stack ?? error}`);
  }
}

// The doc's client, as written there (initializeWebSocket), parameterised by
// the token, the member and the channel; every frame it gets is recorded,
// raw and parsed, with its arrival time.
function initializeWebSocket(token, COMMUNITY_MEMBER_ID, channelName = "ChatRoomChannel") {
  const socket = new WebSocket(URL, {
    headers: {
      Origin: ORIGIN,
      Authorization: `Bearer ${token}`,
    },
  });
  socket.frames = [];
  socket.closed = null;
  socket.on("open", function open() {
    const subscribeMessage = JSON.stringify({
      command: "subscribe",
      identifier: JSON.stringify({
        channel: channelName,
        community_member_id: COMMUNITY_MEMBER_ID,
      }),
    });
    socket.send(subscribeMessage);
    // The doc's "Optional: Send a test message" (not an Action Cable
    // command: ignored, as Circle's server ignores it).
    socket.send(JSON.stringify({ action: "message", data: "Hello Server!" }));
  });
  socket.on("message", function incoming(data) {
    socket.frames.push({ raw: data.toString(), message: JSON.parse(data), at: Date.now() });
  });
  socket.on("error", function error(err) {
    socket.error = err;
  });
  socket.on("close", function close(code) {
    socket.closed = { code, at: Date.now() };
  });
  return socket;
}

function waitFor(what, predicate, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const value = predicate();
      if (value) {
        clearInterval(timer);
        resolve(value);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 10);
  });
}

const nonPing = (socket) => socket.frames.filter((f) => f.message.type !== "ping");
const send = (socket, command, params) =>
  socket.send(JSON.stringify({ command, identifier: JSON.stringify(params) }));

async function answerTo(socket, params) {
  const identifier = JSON.stringify(params);
  const frame = await waitFor(`an answer to ${identifier}`, () =>
    socket.frames.find((f) => f.message.identifier === identifier && f.message.type),
  );
  return frame;
}

const alice = initializeWebSocket(env("TOKEN_42"), 42);
const bob = initializeWebSocket(env("TOKEN_43"), 43);
// Opened now, checked last: its token expires while the other steps run.
const short = initializeWebSocket(env("TOKEN_SHORT"), 42);

await step("welcome with a sid, first frame on the socket", async () => {
  await waitFor("alice's welcome", () => alice.frames.length >= 1);
  const [first] = alice.frames;
  assert.equal(first.message.type, "welcome");
  assert.match(first.message.sid, /^[A-Za-z0-9]{21}$/);
  assert.deepEqual(Object.keys(first.message), ["type", "sid"]);
  await waitFor("bob's welcome", () => bob.frames.length >= 1);
  assert.notEqual(bob.frames[0].message.sid, first.message.sid, "a sid per connection");
});

await step("the doc's subscription confirmed, byte for byte", async () => {
  const frame = await answerTo(alice, { channel: "ChatRoomChannel", community_member_id: 42 });
  assert.equal(
    frame.raw,
    '{"identifier":"{\\"channel\\":\\"ChatRoomChannel\\",\\"community_member_id\\":42}","type":"confirm_subscription"}',
  );
});

await step("pings about 3 s apart", async () => {
  const pings = await waitFor(
    "two pings",
    () => {
      const pings = alice.frames.filter((f) => f.message.type === "ping");
      return pings.length >= 2 ? pings : null;
    },
    10000,
  );
  const [a, b] = pings.slice(-2);
  assert.equal(b.message.message - a.message.message, 3);
  const gap = b.at - a.at;
  assert.ok(gap > 2500 && gap < 3500, `pings ${gap} ms apart`);
});

await step("a foreign member id is rejected on each member channel", async () => {
  for (const channel of [
    "ChatRoomChannel",
    "NotificationChannel",
    "Chats::CommunityMemberThreadsChannel",
  ]) {
    const params = { channel, community_member_id: 43 };
    send(alice, "subscribe", params);
    const frame = await answerTo(alice, params);
    assert.equal(frame.message.type, "reject_subscription", channel);
  }
  for (const channel of ["NotificationChannel", "Chats::CommunityMemberThreadsChannel"]) {
    const params = { channel, community_member_id: 42 };
    send(alice, "subscribe", params);
    const frame = await answerTo(alice, params);
    assert.equal(frame.message.type, "confirm_subscription", channel);
  }
});

await step("room channels for the room's members only", async () => {
  const room7 = { channel: "Chats::RoomChannel", chat_room_id: 7 };
  send(alice, "subscribe", room7);
  assert.equal((await answerTo(alice, room7)).message.type, "confirm_subscription");
  send(bob, "subscribe", room7);
  assert.equal((await answerTo(bob, room7)).message.type, "reject_subscription");
  const room8 = { channel: "Chats::RoomChannel", chat_room_id: 8 };
  send(alice, "subscribe", room8);
  assert.equal((await answerTo(alice, room8)).message.type, "reject_subscription");
});

await step("a broadcast to a room reaches its members only", async () => {
  const event = { event: "newMessage", data: { id: 1, body: "hello room 7", chat_room_uuid: "r7" } };
  const response = await fetch(`${HTTP}/_broadcast`, {
    method: "POST",
    body: JSON.stringify({ stream: "chat-room-7-channel", data: event }),
  });
  assert.equal(response.status, 201);
  const identifier = JSON.stringify({ channel: "Chats::RoomChannel", chat_room_id: 7 });
  const got = await waitFor("the room message", () =>
    alice.frames.find((f) => f.message.identifier === identifier && f.message.message),
  );
  assert.deepEqual(got.message.message, event);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.ok(
    !bob.frames.some((f) => f.message.identifier && f.message.message),
    `bob got ${JSON.stringify(nonPing(bob).map((f) => f.message))}`,
  );
});

for (const [name, token] of [
  ["a token signed with another secret", env("TOKEN_FOREIGN")],
  ["an expired token", env("TOKEN_EXPIRED")],
  ["a malformed token", "not-a-jwt"],
]) {
  await step(`${name} is refused as unauthorized`, async () => {
    const socket = initializeWebSocket(token, 42);
    await waitFor("the close", () => socket.closed);
    assert.deepEqual(
      socket.frames.map((f) => f.message),
      [{ type: "disconnect", reason: "unauthorized", reconnect: false }],
    );
  });
}

await step("a token expiring on a live connection gets token_expired, then a close", async () => {
  const exp = Number(env("EXP_SHORT")) * 1000;
  const socket = short;
  assert.equal(socket.frames[0]?.message.type, "welcome");
  await waitFor("the close", () => socket.closed, 20000);
  const last = nonPing(socket).at(-1);
  assert.deepEqual(last.message, { type: "disconnect", reason: "token_expired", reconnect: false });
  assert.equal(socket.closed.code, 1000);
  // At the instant of exp (no leeway), give or take the clocks' reading.
  assert.ok(last.at >= exp - 50, `token_expired ${exp - last.at} ms before exp`);
  assert.ok(last.at < exp + 1000, `token_expired ${last.at - exp} ms after exp`);
});

alice.close();
bob.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
