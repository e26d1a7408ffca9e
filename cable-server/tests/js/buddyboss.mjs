// BuddyBoss' messaging clients as the doc shows them
// (../shared/seeds/buddyboss-websocket-server.md): a plain WebSocket to the
// server's root, no subprotocol, JSON frames tagged by `type`, against
// `cable-server --mount /=buddyboss --mount /cable=actioncable --token T`.
// The Rust test tests/buddyboss_node.rs starts the server and sets:
//
//   BB_URL      ws://127.0.0.1:PORT/
//   BB_TOKEN    the server's --token
//
// Prints "N passed, M failed" and exits 0 when every step passed.

import assert from "node:assert/strict";
import WebSocket from "ws";

const URL = process.env.BB_URL;
const TOKEN = process.env.BB_TOKEN;
const HTTP = URL.replace(/^ws/, "http").replace(/\/$/, "");
const CABLE = URL.replace(/\/$/, "") + "/cable";

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The doc's connection snippet: `new WebSocket('ws://localhost:8080')`, every
// message JSON.parse'd; recorded for the assertions.
function connect(url = URL, protocols = undefined, options = undefined) {
  const socket = new WebSocket(url, protocols, options);
  socket.received = [];
  socket.onmessage = (event) => {
    const data = JSON.parse(event.data);
    socket.received.push(data);
  };
  socket.closedAt = null;
  socket.onclose = () => {
    socket.closedAt = Date.now();
  };
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = (error) => reject(error);
  });
}

const send = (socket, message) => socket.send(JSON.stringify(message));

async function until(predicate, what, ms = 5000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const take = (socket) => socket.received.splice(0);

// A client that announced itself and joined thread "t1".
async function user(id, thread = "t1") {
  const socket = await connect();
  send(socket, { type: "user_connected", userId: id });
  send(socket, { type: "join_thread", threadId: thread });
  return socket;
}

// A round trip through the server: a bad frame's error reply proves every
// earlier frame of this socket was handled.
async function settle(...sockets) {
  for (const socket of sockets) {
    const before = socket.received.length;
    socket.send("{");
    await until(() => socket.received.slice(before).some((m) => m.type === "error"), "a settle reply");
    socket.received.splice(before).filter((m) => m.type !== "error").forEach((m) => socket.received.push(m));
  }
}

await step("presence: user_connected is announced to every other client", async () => {
  const a = await connect();
  const b = await connect();
  await sleep(50);
  send(a, { type: "user_connected", userId: "alice" });
  await until(() => b.received.length > 0, "the announcement");
  assert.deepEqual(b.received, [{ type: "user_connected", userId: "alice" }]);
  await settle(a);
  assert.deepEqual(take(a), [], "not to the sender");
  a.close();
  b.close();
});

await step("thread message: every other member, not the sender, not outsiders", async () => {
  const alice = await user("alice");
  const bob = await user("bob");
  const carol = await user("carol");
  const dave = await user("dave", "t2");
  await settle(alice, bob, carol, dave);
  [alice, bob, carol, dave].forEach(take);
  send(alice, {
    type: "send_message",
    recipientId: "bob",
    message: "Hello, this is a message.",
    threadId: "t1",
    token: TOKEN,
  });
  await until(() => bob.received.length && carol.received.length, "the message");
  for (const socket of [bob, carol]) {
    const [data] = take(socket);
    assert.equal(data.type, "message");
    assert.equal(data.message, "Hello, this is a message.");
    assert.equal(data.threadId, "t1");
    assert.equal(data.senderId, "alice");
  }
  await settle(alice, dave);
  assert.deepEqual(take(alice), []);
  assert.deepEqual(take(dave), []);
  [alice, bob, carol, dave].forEach((s) => s.close());
});

await step("direct message: every connection of the recipient, nobody else", async () => {
  const alice = await user("alice");
  const bob1 = await user("bob");
  const bob2 = await user("bob", "t9");
  const carol = await user("carol");
  await settle(alice, bob1, bob2, carol);
  [alice, bob1, bob2, carol].forEach(take);
  send(alice, { type: "send_message", recipientId: "bob", message: "psst", token: TOKEN });
  await until(() => bob1.received.length && bob2.received.length, "the direct message");
  for (const socket of [bob1, bob2]) {
    const [data] = take(socket);
    assert.equal(data.type, "message");
    assert.equal(data.message, "psst");
    assert.equal(data.senderId, "alice");
  }
  await settle(alice, carol);
  assert.deepEqual(take(alice), []);
  assert.deepEqual(take(carol), []);
  [alice, bob1, bob2, carol].forEach((s) => s.close());
});

await step("typing: every other member, never the sender", async () => {
  const alice = await user("alice");
  const bob = await user("bob");
  await settle(alice, bob);
  [alice, bob].forEach(take);
  send(alice, { type: "typing", threadId: "t1" });
  await until(() => bob.received.length, "typing");
  assert.deepEqual(take(bob), [{ type: "typing", threadId: "t1", userId: "alice", typing: true }]);
  await settle(alice);
  assert.deepEqual(take(alice), []);
  alice.close();
  bob.close();
});

await step("signalling: call_initiated, offer, answer, ice-candidate reach only the recipient, untouched", async () => {
  const alice = await user("alice");
  const bob = await user("bob");
  const carol = await user("carol");
  await settle(alice, bob, carol);
  [alice, bob, carol].forEach(take);
  const frames = [
    { type: "call_initiated", senderId: "alice", recipientId: "bob", threadId: "t1" },
    { type: "offer", offer: { type: "offer", sdp: "v=0\r\n" }, recipientId: "bob", senderId: "alice", threadId: "t1" },
    { type: "answer", answer: "ANSWER_SDP", recipientId: "bob", senderId: "alice", threadId: "t1" },
    { type: "ice-candidate", candidate: "ICE_CANDID ATE", recipientId: "bob", senderId: "alice", threadId: "t1" },
  ];
  for (const frame of frames) send(alice, frame);
  await until(() => bob.received.length === 4, "four signals");
  assert.deepEqual(take(bob), frames);
  await settle(alice, carol);
  assert.deepEqual(take(alice), []);
  assert.deepEqual(take(carol), []);
  [alice, bob, carol].forEach((s) => s.close());
});

await step("errors: each bad input answers the sender, delivers nothing, keeps the socket", async () => {
  const alice = await user("alice");
  const bob = await user("bob");
  await settle(alice, bob);
  [alice, bob].forEach(take);
  const cases = [
    ["not json", "invalid JSON"],
    [JSON.stringify({ type: "dance" }), 'unknown type "dance"'],
    [JSON.stringify({ threadId: "t1" }), 'missing "type"'],
    [JSON.stringify({ type: "join_thread" }), 'join_thread: missing "threadId"'],
    [JSON.stringify({ type: "typing" }), 'typing: missing "threadId"'],
    [JSON.stringify({ type: "send_message", message: "x", threadId: "t1" }), 'send_message: missing "token"'],
    [JSON.stringify({ type: "send_message", message: "x", threadId: "t1", token: "wrong" }), "send_message: invalid token"],
    [JSON.stringify({ type: "send_message", threadId: "t1", token: TOKEN }), 'send_message: missing "message"'],
    [JSON.stringify({ type: "offer", offer: "o", senderId: "alice", threadId: "t1" }), 'offer: missing "recipientId"'],
  ];
  for (const [frame, message] of cases) {
    alice.send(frame);
    await until(() => alice.received.length, `the error for ${frame}`);
    const [data] = take(alice);
    assert.equal(data.type, "error", frame);
    assert.ok(data.message.startsWith(message), `${frame}: ${data.message}`);
  }
  await sleep(100);
  assert.deepEqual(take(bob), [], "nothing delivered");
  assert.equal(alice.readyState, WebSocket.OPEN);
  alice.close();
  bob.close();
});

await step("200 members in one thread: one message reaches the 199 others", async () => {
  const members = [];
  for (let i = 0; i < 200; i++) members.push(await user(`m${i}`, "big"));
  await settle(...members);
  members.forEach(take);
  send(members[0], { type: "send_message", message: "to all", threadId: "big", token: TOKEN });
  await until(() => members.slice(1).every((m) => m.received.length === 1), "199 deliveries", 10000);
  for (const m of members.slice(1)) {
    const [data] = take(m);
    assert.equal(data.message, "to all");
    assert.equal(data.senderId, "m0");
  }
  await settle(members[0]);
  assert.deepEqual(take(members[0]), []);
  members.forEach((m) => m.close());
});

await step("one room across protocols: Action Cable and BuddyBoss receive one broadcast", async () => {
  const bb = await user("zoe", "room1");
  const cable = await connect(`${CABLE}?token=${TOKEN}`, ["actioncable-v1-json", "actioncable-unsupported"], {
    headers: { Origin: HTTP },
  });
  await until(() => cable.received.some((m) => m.type === "welcome"), "the welcome");
  const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "room1" });
  send(cable, { command: "subscribe", identifier });
  await until(() => cable.received.some((m) => m.type === "confirm_subscription"), "the confirmation");
  await settle(bb);
  take(bb);
  cable.received.splice(0);
  let response = await fetch(`${HTTP}/_broadcast`, {
    method: "POST",
    body: JSON.stringify({ stream: "room1", data: { text: "hi" } }),
  });
  assert.ok(response.ok, `POST /_broadcast: ${response.status}`);
  const isMessage = (m) => m.identifier === identifier;
  await until(() => bb.received.length && cable.received.some(isMessage), "the broadcast");
  assert.deepEqual(take(bb), [{ type: "message", threadId: "room1", message: { text: "hi" } }]);
  assert.deepEqual(cable.received.filter(isMessage), [{ identifier, message: { text: "hi" } }]);
  cable.received.splice(0);
  // A payload that is a BuddyBoss frame reaches BuddyBoss clients as itself.
  const typed = { type: "message", message: "from Rails", threadId: "room1" };
  response = await fetch(`${HTTP}/_broadcast`, {
    method: "POST",
    body: JSON.stringify({ stream: "room1", data: typed }),
  });
  assert.ok(response.ok);
  await until(() => bb.received.length && cable.received.some(isMessage), "the typed broadcast");
  assert.deepEqual(take(bb), [typed]);
  assert.deepEqual(cable.received.filter(isMessage), [{ identifier, message: typed }]);
  // And a BuddyBoss thread message reaches the Action Cable subscriber.
  cable.received.splice(0);
  send(bb, { type: "send_message", message: "yo", threadId: "room1", token: TOKEN });
  await until(() => cable.received.some(isMessage), "the thread message on Action Cable");
  const [got] = cable.received.filter(isMessage);
  assert.equal(got.message.message, "yo");
  assert.equal(got.message.senderId, "zoe");
  bb.close();
  cable.close();
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
