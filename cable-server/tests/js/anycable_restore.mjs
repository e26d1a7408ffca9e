// Session resume for apps that keep state per connection, with the real
// AnyCable JS client (@anycable/web) in Node and the `ws` package. The Rust
// test (tests/anycable_restore.rs) starts, and passes here:
//
//   RPC_PORT       cable-server --rpc-url in front of rpc_backend.mjs
//                  (@anycable/serverless-js), whose log is at BACKEND_URL
//   REFERENCE_PORT cable-server --app reference
//
// Each step drops the client's socket (no close frame), lets the client come
// back with its sid, and checks that the session was restored (welcome
// "restored":true, no subscribe sent again) with the app's state intact.
// Exits 0 when every step passed.

import WebSocket from "ws";
import { createCable } from "@anycable/web";
import { assert, assertEqual, counts, log, step, waitFor } from "./steps.mjs";

const RPC_PORT = Number(process.env.RPC_PORT);
const REFERENCE_PORT = Number(process.env.REFERENCE_PORT);
const BACKEND = process.env.BACKEND_URL;
if (!RPC_PORT || !REFERENCE_PORT || !BACKEND) {
  console.error("set RPC_PORT, REFERENCE_PORT and BACKEND_URL");
  process.exit(2);
}

function newRecord() {
  return { urls: [], sent: [], received: [], socket: null };
}

// A WebSocket that records frames and whose socket a step can drop.
function recordingSocket(record, port) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: `http://127.0.0.1:${port}` });
      record.urls.push(url);
      record.socket = this;
      this.addEventListener("message", (event) => record.received.push(JSON.parse(event.data)));
    }
    send(data) {
      record.sent.push(JSON.parse(data));
      super.send(data);
    }
  };
}

function cableWith(record, port, query) {
  return createCable(`ws://127.0.0.1:${port}/cable?${query}`, {
    protocol: "actioncable-v1-ext-json",
    websocketImplementation: recordingSocket(record, port),
    logLevel: process.env.CABLE_E2E_DEBUG ? "debug" : "error",
    reconnectStrategy: () => 700,
  });
}

// Drops the socket and waits for the restored welcome; checks the client
// sent no subscribe after the drop.
async function dropAndRestore(record, identifier) {
  const welcome = record.received.find((f) => f.type === "welcome");
  assert(typeof welcome.sid === "string" && welcome.sid.length > 0, "a sid in the welcome");
  const sentBefore = record.sent.length;
  record.socket.terminate();
  await waitFor("the restored welcome", () => record.received.some((f) => f.type === "welcome" && f.restored === true), 10000);
  assert(record.urls[1].includes(`sid=${encodeURIComponent(welcome.sid)}`), `reconnect URL carries the sid: ${record.urls[1]}`);
  const restored = record.received.find((f) => f.type === "welcome" && f.restored === true);
  assertEqual(restored.restored_ids, [identifier], "restored_ids");
  assert(restored.sid !== welcome.sid, "a new sid");
  const resent = record.sent.slice(sentBefore).filter((c) => c.command === "subscribe");
  assertEqual(resent.length, 0, "subscribes after the restore");
}

async function backendLog() {
  const response = await fetch(`${BACKEND}/_test/log`);
  return response.json();
}

async function main() {
  await step("rpc: restored without a second connect; identifiers, cstate and istate kept", async () => {
    const record = newRecord();
    const cable = cableWith(record, RPC_PORT, "token=alice");
    const params = { room: "lobby" };
    const identifier = JSON.stringify({ channel: "ChatChannel", room: "lobby" });
    const channel = cable.subscribeTo("ChatChannel", params);
    const messages = [];
    channel.on("message", (message) => messages.push(message));
    await channel.ensureSubscribed();
    await waitFor("hello", () => messages.some((m) => m.hello === "alice"));
    await channel.perform("count");
    await waitFor("count 1", () => messages.some((m) => m.count === 1));
    assertEqual(messages.find((m) => m.count === 1), { count: 1, cuser: "alice" }, "first count");

    await dropAndRestore(record, identifier);

    // istate: the count goes on from 1; cstate: the connection's user.
    await channel.perform("count");
    await waitFor("count 2", () => messages.some((m) => m.count === 2));
    assertEqual(messages.find((m) => m.count === 2), { count: 2, cuser: "alice" }, "count after the restore");
    // The identifiers: a broadcast by the backend names alice.
    await channel.perform("speak", { text: "back" });
    await waitFor("speak", () => messages.some((m) => m.text === "back"));
    assertEqual(messages.find((m) => m.text === "back"), { text: "back", from: "alice" }, "broadcast after the restore");

    const { calls } = await backendLog();
    const connects = calls.filter((c) => c.method === "connect" && c.body.env.url.includes("token=alice"));
    assertEqual(connects.length, 1, "connect calls for alice");
    const subscribes = calls.filter((c) => c.method === "command" && c.body.command === "subscribe" && c.body.identifier === identifier);
    assertEqual(subscribes.length, 1, "subscribe calls");
    const counts = calls.filter((c) => c.method === "command" && c.body.data && JSON.parse(c.body.data).action === "count");
    assertEqual(counts.length, 2, "count calls");
    assertEqual(counts[1].body.connection_identifiers, JSON.stringify({ user: "alice" }), "identifiers after the restore");
    assertEqual(counts[1].body.env.cstate, { user: "alice" }, "cstate after the restore");
    // The env is the new request's, as AnyCable's: the URL it came back with.
    assert(counts[0].body.env.url.endsWith("/cable?token=alice"), `first url: ${counts[0].body.env.url}`);
    assert(counts[1].body.env.url.includes("sid="), `url after the restore: ${counts[1].body.env.url}`);
    // istate goes to the backend per channel, as AnyCable sends it.
    assertEqual(counts[1].body.env.istate, { [identifier]: JSON.stringify({ room: "lobby", count: 1 }) }, "istate after the restore");
    assert(!calls.some((c) => c.method === "disconnect" && c.body.identifiers === JSON.stringify({ user: "alice" })), "no disconnect call for the gap");
    cable.disconnect();
  });

  await step("reference app: restored with its state per subscription", async () => {
    const record = newRecord();
    const cable = cableWith(record, REFERENCE_PORT, "token=bob");
    const identifier = JSON.stringify({ channel: "BenchmarkChannel" });
    const channel = cable.subscribeTo("BenchmarkChannel");
    const messages = [];
    channel.on("message", (message) => messages.push(message));
    await channel.ensureSubscribed();
    // `echo` broadcasts to the subscription's own stream, which the app
    // keeps per subscription.
    await channel.perform("echo", { n: 1 });
    await waitFor("echo 1", () => messages.some((m) => m.n === 1));

    await dropAndRestore(record, identifier);

    await channel.perform("echo", { n: 2 });
    await waitFor("echo 2 through the subscription's own stream", () => messages.some((m) => m.n === 2));
    assertEqual(messages.find((m) => m.n === 2), { n: 2, action: "echo" }, "echo after the restore");
    cable.disconnect();
  });
}

try {
  await main();
} catch (error) {
  log(`stopped: ${error.message}`);
}
log(`${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 && counts.passed === 2 ? 0 : 1);
