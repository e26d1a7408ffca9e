// The real Rails JS client (@rails/actioncable) against cable-server in
// front of an @anycable/serverless-js backend (rpc_backend.mjs) over
// AnyCable's RPC. The Rust test (tests/rpc_node.rs) starts both and runs:
//
//   CABLE_PORT=... BACKEND_URL=http://127.0.0.1:... BROADCAST_KEY=... node rpc_client.mjs
//
// cable-server runs with --rpc-timeout-ms 1500. Exits 0 when every step passed.

import WebSocket from "ws";
import { ActionCable, sendOrigin } from "./rails_client_in_node.mjs";
import { assert, assertEqual, counts, log, sleep, step, track, waitFor } from "./steps.mjs";

const PORT = Number(process.env.CABLE_PORT);
const BACKEND = process.env.BACKEND_URL;
const BROADCAST_KEY = process.env.BROADCAST_KEY;
const SECRET = process.env.RPC_SECRET;
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

async function broadcast(stream, data) {
  const response = await fetch(`http://127.0.0.1:${PORT}/_broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BROADCAST_KEY}` },
    body: JSON.stringify({ stream, data: JSON.stringify(data) }),
  });
  assertEqual(response.status, 201, "POST /_broadcast status");
}

// The frames a raw socket gets within `ms`.
function rawFrames(query, ms) {
  return new Promise((resolve, reject) => {
    const frames = [];
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}/cable${query}`, ["actioncable-v1-json"], {
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

const lobbyParams = { channel: "ChatChannel", room: "lobby" };
const lobbyId = JSON.stringify(lobbyParams);

async function main() {
  const consumer = ActionCable.createConsumer(`ws://127.0.0.1:${PORT}/cable?token=alice`);
  const lobby = track(consumer, lobbyParams);

  await step("connect accepted by the backend; subscribe with streams and a transmission", async () => {
    await waitFor("connected", () => lobby.seen.connected.length === 1);
    await waitFor("hello", () => lobby.seen.received.length === 1);
    assertEqual(lobby.seen.received[0], { hello: "alice" }, "subscribed transmission");
    const { calls } = await backendLog();
    const connect = calls.find((c) => c.method === "connect" && c.body.env.url.endsWith("token=alice"));
    assert(connect, "a connect call for alice");
    assertEqual(connect.body.env.url, `http://127.0.0.1:${PORT}/cable?token=alice`, "env.url absolute");
    assert(connect.sid, "x-anycable-meta-sid sent");
    assertEqual(connect.authorization, `Bearer ${SECRET}`, "the RPC secret");
    assertEqual(connect.answer.status, 1, "connect status");
    const subscribe = calls.find((c) => c.method === "command" && c.body.command === "subscribe");
    assertEqual(subscribe.body.identifier, lobbyId, "identifier");
    assertEqual(subscribe.body.connection_identifiers, JSON.stringify({ user: "alice" }), "connection_identifiers");
    assertEqual(subscribe.body.env.cstate, { user: "alice" }, "cstate from connect");
    assertEqual(subscribe.sid, connect.sid, "same sid");
  });

  await step("one welcome, with the backend's sid", async () => {
    const frames = await rawFrames("?token=raw", 500);
    const welcomes = frames.filter((f) => f.type === "welcome");
    assertEqual(welcomes.length, 1, "welcome frames");
    const { calls } = await backendLog();
    const connect = calls.find((c) => c.method === "connect" && c.body.env.url.endsWith("token=raw"));
    assertEqual(welcomes[0], { type: "welcome", sid: connect.sid }, "welcome");
  });

  await step("a subscription the backend rejects reaches rejected", async () => {
    const secret = track(consumer, { channel: "ChatChannel", room: "secret" });
    await waitFor("rejected", () => secret.seen.rejected === 1);
    assertEqual(secret.seen.connected.length, 0, "connected calls");
  });

  await step("perform: the backend broadcasts through POST /_broadcast", async () => {
    lobby.subscription.perform("speak", { text: "hello <world>" });
    await waitFor("speak broadcast", () => lobby.seen.received.length === 2);
    assertEqual(lobby.seen.received[1], { text: "hello <world>", from: "alice" }, "broadcast");
  });

  await step("perform: transmissions, istate and cstate kept between calls", async () => {
    lobby.subscription.perform("count");
    lobby.subscription.perform("count");
    await waitFor("counts", () => lobby.seen.received.length === 4);
    assertEqual(lobby.seen.received[2], { count: 1, cuser: "alice" }, "first count");
    assertEqual(lobby.seen.received[3], { count: 2, cuser: "alice" }, "second count");
  });

  await step("send(data) without action goes to the backend as it is (receive)", async () => {
    lobby.subscription.send({ x: 1 });
    await waitFor("echo", () => lobby.seen.received.length === 5);
    assertEqual(lobby.seen.received[4], { received: { x: 1 } }, "receive");
    const { calls } = await backendLog();
    const message = calls.filter((c) => c.body.command === "message").pop();
    assertEqual(message.body.data, JSON.stringify({ x: 1 }), "data as sent");
  });

  await step("perform: streams started and stopped", async () => {
    lobby.subscription.perform("follow");
    await waitFor("following", () => lobby.seen.received.length === 6);
    assertEqual(lobby.seen.received[5], { following: "extra_lobby" }, "follow");
    await broadcast("extra_lobby", { extra: 1 });
    await waitFor("extra", () => lobby.seen.received.length === 7);
    assertEqual(lobby.seen.received[6], { extra: 1 }, "extra broadcast");
    lobby.subscription.perform("unfollow");
    await waitFor("unfollowed", () => lobby.seen.received.length === 8);
    await broadcast("extra_lobby", { extra: 2 });
    await broadcast("chat_lobby", { marker: true });
    await waitFor("marker", () => lobby.seen.received.length === 9);
    assertEqual(lobby.seen.received[8], { marker: true }, "after unfollow");
  });

  await step("a failing action (HTTP 500) is dropped; later commands go on", async () => {
    lobby.subscription.perform("boom");
    lobby.subscription.perform("count");
    await waitFor("count after boom", () => lobby.seen.received.length === 10);
    assertEqual(lobby.seen.received[9], { count: 3, cuser: "alice" }, "count");
  });

  await step("an action past the deadline is dropped; later commands go on", async () => {
    lobby.subscription.perform("slow");
    lobby.subscription.perform("count");
    await waitFor("count after slow", () => lobby.seen.received.length === 11, 8000);
    assertEqual(lobby.seen.received[10], { count: 4, cuser: "alice" }, "count");
    await sleep(2000);
    assertEqual(lobby.seen.received.length, 11, "nothing of the slow action");
  });

  await step("$pubsub streams are the server's own", async () => {
    const pub = track(consumer, { channel: "$pubsub", stream_name: "public" });
    await waitFor("pubsub connected", () => pub.seen.connected.length === 1);
    await broadcast("public", { p: 1 });
    await waitFor("pubsub message", () => pub.seen.received.length === 1);
    const { calls } = await backendLog();
    assert(!calls.some((c) => (c.body.identifier ?? "").includes("$pubsub")), "no RPC for $pubsub");
    pub.subscription.unsubscribe();
  });

  await step("unsubscribe reaches the backend", async () => {
    const other = track(consumer, { channel: "ChatChannel", room: "other" });
    await waitFor("other connected", () => other.seen.connected.length === 1);
    other.subscription.unsubscribe();
    let events = [];
    await waitFor("backend saw it", () => {
      backendLog().then((l) => (events = l.events));
      return events.some((e) => e.event === "unsubscribed" && e.room === "other");
    });
  });

  await step("an unauthorized connection does not reconnect", async () => {
    const bad = ActionCable.createConsumer(`ws://127.0.0.1:${PORT}/cable?token=bad`);
    const sub = track(bad, lobbyParams);
    await waitFor("disconnected", () => sub.seen.disconnected.length === 1);
    assertEqual(sub.seen.disconnected[0], { willAttemptReconnect: false }, "disconnected info");
    assertEqual(sub.seen.connected.length, 0, "connected calls");
    bad.disconnect();
  });

  await step("a connect past the deadline is closed; the client tries again", async () => {
    const frames = await rawFrames("?token=slow", 2500);
    assertEqual(frames, [{ type: "disconnect", reason: "server_error", reconnect: true }], "frames");
    const slow = ActionCable.createConsumer(`ws://127.0.0.1:${PORT}/cable?token=slow`);
    const sub = track(slow, lobbyParams);
    await waitFor("disconnected", () => sub.seen.disconnected.length === 1);
    assertEqual(sub.seen.disconnected[0], { willAttemptReconnect: true }, "disconnected info");
    slow.disconnect();
  });

  await step("disconnect reaches the backend with the subscriptions", async () => {
    consumer.disconnect();
    let events = [];
    await waitFor("disconnect event", () => {
      backendLog().then((l) => (events = l.events));
      return events.some((e) => e.event === "disconnect" && e.user === "alice");
    });
    const disconnect = events.find((e) => e.event === "disconnect" && e.user === "alice");
    assertEqual(disconnect.subscriptions, [lobbyId], "subscriptions");
    // serverless-js calls each subscription's `unsubscribed` on disconnect.
    assert(events.some((e) => e.event === "unsubscribed" && e.room === "lobby"), "lobby unsubscribed");
    const { calls } = await backendLog();
    const call = calls.find((c) => c.method === "disconnect" && c.body.identifiers === JSON.stringify({ user: "alice" }));
    assertEqual(call.body.env.cstate, { user: "alice" }, "cstate at disconnect");
    assert(call.body.env.istate[lobbyId], "istate at disconnect");
  });
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
