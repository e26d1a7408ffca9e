// platformOS's chat (platformos-websockets.md) with the real Rails JS client
// (@rails/actioncable), used as the doc's chat.js uses it, against
// cable-server --app platformos --require-csrf --rpc-timeout-ms 1000 in front
// of platformos_backend.mjs. The Rust test (tests/platformos_node.rs) starts
// both and runs:
//
//   CABLE_PORT=... BACKEND_URL=http://127.0.0.1:... BROADCAST_KEY=... \
//   BROADCAST_BODY='{"stream":"conversate:12",...}' node platformos_client.mjs
//
// BROADCAST_BODY is the POST /_broadcast body the Rust test made with
// cable_channels::platformos::channel_send_message. Exits 0 when every step
// passed.

import WebSocket from "ws";
import { ActionCable, sendOrigin } from "./rails_client_in_node.mjs";
import { assert, assertEqual, counts, log, sleep, step, track, waitFor } from "./steps.mjs";

const PORT = Number(process.env.CABLE_PORT);
const BACKEND = process.env.BACKEND_URL;
const BROADCAST_KEY = process.env.BROADCAST_KEY;
const BROADCAST_BODY = process.env.BROADCAST_BODY;
const SLOW_MS = Number(process.env.SLOW_MS ?? 2500);
if (!PORT || !BACKEND) {
  console.error("set CABLE_PORT and BACKEND_URL");
  process.exit(2);
}

const ORIGIN = `http://127.0.0.1:${PORT}`;
sendOrigin(() => ORIGIN);

async function backendLog() {
  const response = await fetch(`${BACKEND}/_test/log`);
  return response.json();
}

// The frames a raw socket gets within `ms`.
function rawFrames(query, ms) {
  return new Promise((resolve, reject) => {
    const frames = [];
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}/websocket${query}`, ["actioncable-v1-json"], {
      origin: ORIGIN,
    });
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type !== "ping") frames.push(frame);
    });
    ws.on("error", reject);
    setTimeout(() => {
      ws.close();
      resolve(frames);
    }, ms);
  });
}


// The doc's consumer.js, with the CSRF token (and, for this backend, the user).
const consumerFor = (user, token = `csrf-${user}`) =>
  ActionCable.createConsumer(`ws://127.0.0.1:${PORT}/websocket?authenticity_token=${token}&user=${user}`);

// The doc's chat.js createSubscription.
const conversate = (consumer, roomId) => track(consumer, { channel: "conversate", room_id: roomId });

// The doc's sendMessage.
const messageData = (message, extra = {}) => ({
  message,
  author_id: 1,
  sender_name: "Alice",
  created_at: new Date(),
  create: true,
  ...extra,
});
const asReceived = (data) => JSON.parse(JSON.stringify(data));

async function stats() {
  const response = await fetch(`http://127.0.0.1:${PORT}/_platformos/stats`);
  assertEqual(response.status, 200, "stats status");
  return response.json();
}

async function main() {
  let alice, bob, carol, aliceRoom, bobRoom, carolRoom;

  await step("CSRF: no authenticity_token: refused before the backend is asked", async () => {
    const frames = await rawFrames("?user=mallory", 500);
    assertEqual(frames, [{ type: "disconnect", reason: "unauthorized", reconnect: false }], "frames");
    const calls = await backendLog();
    assert(!calls.some((c) => c.kind === "connect" && c.user === "mallory"), "the backend was not asked");
  });

  await step("CSRF: a wrong token reaches the backend, which refuses it", async () => {
    const frames = await rawFrames("?authenticity_token=forged&user=mallory", 500);
    assertEqual(frames, [{ type: "disconnect", reason: "unauthorized", reconnect: false }], "frames");
    const calls = await backendLog();
    const connect = calls.find((c) => c.kind === "connect" && c.user === "mallory");
    assertEqual(connect?.token, "forged", "the token the backend verified");
  });

  await step("CSRF accepted; subscribed.liquid true: room 12 confirmed (as a number and a string)", async () => {
    alice = consumerFor("alice");
    bob = consumerFor("bob");
    aliceRoom = conversate(alice, 12);
    bobRoom = conversate(bob, "12");
    await waitFor("alice connected", () => aliceRoom.seen.connected.length === 1);
    await waitFor("bob connected", () => bobRoom.seen.connected.length === 1);
    const calls = await backendLog();
    assertEqual(calls.find((c) => c.kind === "connect" && c.user === "alice")?.token, "csrf-alice", "alice's token");
  });

  await step("subscribed.liquid false: room refused (rejected)", async () => {
    carol = consumerFor("carol");
    carolRoom = conversate(carol, 12);
    const other = conversate(bob, 13);
    await waitFor("carol rejected", () => carolRoom.seen.rejected === 1);
    await waitFor("bob rejected from 13", () => other.seen.rejected === 1);
    assertEqual(carolRoom.seen.connected.length, 0, "carol not connected");
  });

  await step("a backend slower than the deadline: subscription rejected", async () => {
    // A connection of its own: the client re-sends a pending subscribe every
    // 500 ms, and each attempt holds the connection's commands until its
    // deadline.
    const other = consumerFor("alice");
    const slow = conversate(other, "slow");
    const started = Date.now();
    await waitFor("rejected", () => slow.seen.rejected === 1, 5000);
    const took = Date.now() - started;
    other.disconnect();
    assert(took >= 900 && took < SLOW_MS, `rejected at the 1 s deadline (took ${took} ms)`);
  });

  await step("receive: a message is broadcast to every subscriber of the room", async () => {
    const data = messageData("hello room");
    aliceRoom.subscription.send(data);
    await waitFor("alice got it", () => aliceRoom.seen.received.length === 1);
    await waitFor("bob got it", () => bobRoom.seen.received.length === 1);
    assertEqual(aliceRoom.seen.received[0], asReceived(data), "alice received");
    assertEqual(bobRoom.seen.received[0], asReceived(data), "bob received");
    const calls = await backendLog();
    assertEqual(calls.find((c) => c.kind === "message")?.data, asReceived(data), "the backend saw the message");
  });

  await step("receive.liquid false: a vetoed message is not broadcast, and counted", async () => {
    aliceRoom.subscription.send(messageData("please veto this"));
    aliceRoom.subscription.send(messageData("after the refusal"));
    await waitFor("bob got the next one", () => bobRoom.seen.received.length === 2);
    await sleep(200);
    assertEqual(bobRoom.seen.received.map((d) => d.message), ["hello room", "after the refusal"], "bob");
    assertEqual(aliceRoom.seen.received.map((d) => d.message), ["hello room", "after the refusal"], "alice");
    const calls = await backendLog();
    assert(calls.some((c) => c.kind === "message" && c.data.message === "please veto this"), "backend saw the veto");
    assertEqual((await stats()).vetoed, 1, "vetoed count");
  });

  await step("a backend slower than the deadline: the message is not broadcast, and counted", async () => {
    aliceRoom.subscription.send(messageData("slow one"));
    aliceRoom.subscription.send(messageData("after the late one"));
    await waitFor("bob got the next one", () => bobRoom.seen.received.length === 3, 5000);
    // Past the backend's own (late) answer, still nothing.
    await sleep(SLOW_MS);
    assertEqual(bobRoom.seen.received.map((d) => d.message).slice(2), ["after the late one"], "bob");
    const s = await stats();
    assertEqual(s.timed_out, 1, "timed-out count");
    assertEqual(s.broadcast, 3, "broadcast count");
  });

  await step("ordering: answers out of order, messages handled and broadcast in order", async () => {
    const delays = [300, 0, 200, 0, 100, 0];
    delays.forEach((delay_ms, i) => bobRoom.subscription.send(messageData(`ordered ${i}`, { delay_ms })));
    await waitFor("alice got all", () => aliceRoom.seen.received.length === 3 + delays.length, 5000);
    const got = aliceRoom.seen.received.slice(3).map((d) => d.message);
    assertEqual(got, delays.map((_, i) => `ordered ${i}`), "alice's order");
    assertEqual(bobRoom.seen.received.slice(3).map((d) => d.message), got, "bob's order");
    // One at a time: each call began after the previous one was answered.
    const calls = (await backendLog()).filter((c) => c.kind === "message" && c.user === "bob");
    assertEqual(calls.map((c) => c.data.message), got, "the backend's order");
    for (let i = 1; i < calls.length; i++) {
      assert(calls[i].start >= calls[i - 1].end, `call ${i} started before call ${i - 1} was answered`);
    }
  });

  await step("server-side broadcast (channel_send_message) reaches the room only", async () => {
    const body = JSON.parse(BROADCAST_BODY);
    const response = await fetch(`http://127.0.0.1:${PORT}/_broadcast`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${BROADCAST_KEY}` },
      body: BROADCAST_BODY,
    });
    assertEqual(response.status, 201, "POST /_broadcast status");
    const n = aliceRoom.seen.received.length;
    await waitFor("alice got it", () => aliceRoom.seen.received.length === n + 1);
    await waitFor("bob got it", () => bobRoom.seen.received.length === n + 1);
    assertEqual(aliceRoom.seen.received[n], JSON.parse(body.data), "payload");
    await sleep(200);
    assertEqual(carolRoom.seen.received.length, 0, "carol (refused) got nothing");
  });

  for (const c of [alice, bob, carol]) c?.disconnect();
}

const watchdog = setTimeout(() => {
  log("FAIL: the whole test took more than 90 s");
  process.exit(1);
}, 90000);
try {
  await main();
} catch (error) {
  if (!counts.failed) {
    counts.failed++;
    log(`FAIL: ${error.stack || error}`);
  }
} finally {
  clearTimeout(watchdog);
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exit(counts.failed ? 1 : 0);
}
