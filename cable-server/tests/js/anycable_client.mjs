// End-to-end test of cable-server's AnyCable extended protocol with the real
// AnyCable JS client (@anycable/web, @anycable/core from npm) in Node, with
// the `ws` package as its WebSocket. It starts cable-server itself
// (CABLE_SERVER_BIN) on a free loopback port.
//
//   CABLE_SERVER_BIN=target/debug/cable-server node anycable_client.mjs
//
// Steps: reliable streams across a reconnect (1,000 broadcasts, the socket
// dropped in the middle; every message exactly once after de-duplication by
// offset; the session restored without a resubscribe), then whisper and
// presence between two clients. Exits 0 when every step passed.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { createCable } from "@anycable/web";
import { assert, assertEqual, counts, log, sleep, step, waitFor } from "./steps.mjs";

const BIN = process.env.CABLE_SERVER_BIN;
if (!BIN) {
  console.error("set CABLE_SERVER_BIN to the cable-server binary");
  process.exit(2);
}

let port = 0;
let server = null;

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["--listen", "127.0.0.1:0", "--log", "warn", ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const timer = setTimeout(() => reject(new Error("cable-server did not start")), 30000);
    child.on("error", reject);
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      clearTimeout(timer);
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
      if (!match) return reject(new Error(`unexpected first line: ${line}`));
      lines.on("line", () => {});
      server = child;
      resolve(Number(match[1]));
    });
  });
}

async function broadcast(stream, data) {
  const response = await fetch(`http://127.0.0.1:${port}/_broadcast`, {
    method: "POST",
    body: JSON.stringify({ stream, data }),
  });
  assert(response.status >= 200 && response.status < 300, `broadcast: HTTP ${response.status}`);
}

// A browser-like WebSocket that records what it sends and receives, and
// whose live socket a test can drop (a network failure: no close frame).
function recordingSocket(record) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: `http://127.0.0.1:${port}` });
      record.urls.push(url);
      record.protocols.push(protocols);
      record.socket = this;
      this.addEventListener("message", (event) => record.received.push(JSON.parse(event.data)));
    }
    send(data) {
      record.sent.push(JSON.parse(data));
      super.send(data);
    }
  };
}

function newRecord() {
  return { urls: [], protocols: [], sent: [], received: [], socket: null };
}

function cableWith(record, extra = {}) {
  return createCable(`ws://127.0.0.1:${port}/cable`, {
    protocol: "actioncable-v1-ext-json",
    websocketImplementation: recordingSocket(record),
    logLevel: process.env.CABLE_E2E_DEBUG ? "debug" : "error",
    ...extra,
  });
}

async function main() {
  port = await startServer(["--history-limit", "2000"]);
  log(`cable-server on port ${port}`);

  await step("reliable stream across a reconnect: 1,000 messages, each exactly once", async () => {
    const record = newRecord();
    // A fixed reconnect delay: the gap is long enough for broadcasts to be
    // missed live.
    const cable = cableWith(record, { reconnectStrategy: () => 700 });
    const channel = cable.streamFrom("chat");
    const byOffset = new Map(); // offset -> n
    let arrivals = 0;
    channel.on("message", (message, meta) => {
      arrivals++;
      assert(meta && meta.stream === "chat", `meta.stream: ${JSON.stringify(meta)}`);
      const seen = byOffset.get(meta.offset);
      if (seen !== undefined) assertEqual(seen, message.n, `offset ${meta.offset} twice, differently`);
      byOffset.set(meta.offset, message.n);
    });
    await channel.ensureSubscribed();
    const welcome = record.received.find((f) => f.type === "welcome");
    assert(typeof welcome.sid === "string" && welcome.sid.length > 0, "a sid in the welcome");
    assertEqual(record.protocols[0], "actioncable-v1-ext-json", "offered subprotocol");

    for (let n = 0; n < 500; n++) await broadcast("chat", { n });
    await waitFor("the first 500 live", () => byOffset.size === 500);

    // The network drops: the client sees a close without a close frame.
    const dropped = record.sent.length;
    record.socket.terminate();
    // Broadcasts go on while the client is away and after it is back.
    const firstAfterDrop = 500;
    let n = firstAfterDrop;
    for (; n < 650; n++) await broadcast("chat", { n });
    await waitFor("the reconnect", () => record.urls.length === 2, 10000);
    for (; n < 1000; n++) await broadcast("chat", { n });
    await waitFor("all 1,000 after de-duplication", () => byOffset.size === 1000, 20000);

    assert(record.urls[1].includes(`sid=${encodeURIComponent(welcome.sid)}`), `reconnect URL carries the sid: ${record.urls[1]}`);
    const restored = record.received.filter((f) => f.type === "welcome" && f.restored === true);
    assertEqual(restored.length, 1, "one restored welcome");
    const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "chat" });
    assertEqual(restored[0].restored_ids, [identifier], "restored_ids");
    const afterDrop = record.sent.slice(dropped);
    assertEqual(afterDrop.filter((c) => c.command === "subscribe").length, 0, "subscribes after the restore");
    assert(afterDrop.some((c) => c.command === "history" && c.identifier === identifier), "a history request after the restore");
    // What was broadcast while the client was away came as the history's
    // backlog: between the restored welcome and confirm_history.
    const welcomeAt = record.received.indexOf(restored[0]);
    const confirmAt = record.received.findIndex((f, i) => i > welcomeAt && f.type === "confirm_history");
    assert(confirmAt > welcomeAt, "confirm_history after the restored welcome");
    assert(!record.received.some((f) => f.type === "reject_history"), "no reject_history");
    const backlog = record.received
      .slice(welcomeAt, confirmAt)
      .filter((f) => f.message && f.message.n >= firstAfterDrop);
    assert(backlog.length > 0, "a backlog replayed");
    log(`backlog replayed: ${backlog.length} messages`);

    const offsets = [...byOffset.keys()].sort((a, b) => a - b);
    assertEqual(offsets[0], 1, "first offset");
    assertEqual(offsets[999], 1000, "last offset");
    const ns = [...byOffset.values()].sort((a, b) => a - b);
    for (let i = 0; i < 1000; i++) assertEqual(ns[i], i, `message ${i}`);
    for (const [offset, value] of byOffset) assertEqual(value, offset - 1, `offset ${offset}`);
    log(`arrivals ${arrivals} (duplicates ${arrivals - 1000}), distinct 1000`);
    cable.disconnect();
  });

  await step("whisper and presence between two clients", async () => {
    const ra = newRecord();
    const rb = newRecord();
    const alice = cableWith(ra);
    const bob = cableWith(rb);
    const ca = alice.streamFrom("room");
    const cb = bob.streamFrom("room");
    const aliceGot = [];
    const bobGot = [];
    const bobPresence = [];
    ca.on("message", (m) => aliceGot.push(m));
    cb.on("message", (m) => bobGot.push(m));
    cb.on("presence", (e) => bobPresence.push(e));
    await ca.ensureSubscribed();
    await cb.ensureSubscribed();

    await ca.whisper({ event: "typing", user: "alice" });
    await waitFor("bob gets the whisper", () => bobGot.length === 1);
    assertEqual(bobGot[0], { event: "typing", user: "alice" }, "whisper");
    await sleep(200);
    assertEqual(aliceGot.length, 0, "the sender gets no whisper");

    await ca.presence.join("alice-id", { name: "Alice" });
    await waitFor("bob sees alice join", () => bobPresence.some((e) => e.type === "join"));
    assertEqual(bobPresence.find((e) => e.type === "join"), { type: "join", id: "alice-id", info: { name: "Alice" } }, "join event");
    const state = await cb.presence.info();
    assertEqual(state, { "alice-id": { name: "Alice" } }, "presence info seen by bob");
    await ca.presence.leave();
    await waitFor("bob sees alice leave", () => bobPresence.some((e) => e.type === "leave"));
    assertEqual(bobPresence.find((e) => e.type === "leave").id, "alice-id", "leave id");
    alice.disconnect();
    bob.disconnect();
  });
}

try {
  await main();
} catch (error) {
  log(`stopped: ${error.message}`);
} finally {
  if (server) server.kill("SIGTERM");
}
log(`${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 && counts.passed === 2 ? 0 : 1);
