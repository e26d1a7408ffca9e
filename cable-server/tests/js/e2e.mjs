// End-to-end test of cable-server with the real Rails JS client
// (@rails/actioncable from npm) in Node, with the `ws` package as the
// WebSocket global. It starts cable-server itself (CABLE_SERVER_BIN) with the
// reference app on a free loopback port, and restarts it on the same port.
//
//   CABLE_SERVER_BIN=target/debug/cable-server node e2e.mjs
//
// Exits 0 when every step passed.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { ActionCable, sendOrigin } from "./rails_client_in_node.mjs";
import { assertEqual, counts, log, sleep, step, track, waitFor } from "./steps.mjs";

const BIN = process.env.CABLE_SERVER_BIN;
if (!BIN) {
  console.error("set CABLE_SERVER_BIN to the cable-server binary");
  process.exit(2);
}

let port = 0;
const opened = []; // every socket the client library opened, by URL

// Same origin as Host.
sendOrigin(() => `http://127.0.0.1:${port}`, (url) => opened.push(url));

// ------------------------------------------------------------------ the server

let server = null;

function startServer(listen) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["--listen", listen, "--app", "reference", "--log", "warn"], {
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

function stopServer() {
  return new Promise((resolve) => {
    const child = server;
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.kill("SIGTERM");
  });
}

async function http(method, path, body, headers = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    body,
    headers,
  });
  return { status: response.status, text: await response.text() };
}

// ------------------------------------------------------------------ the test

async function main() {
  port = await startServer("127.0.0.1:0");
  log(`cable-server on port ${port}`);
  const url = `ws://127.0.0.1:${port}/cable?token=alice`;
  const consumer = ActionCable.createConsumer(url);
  const lobby = { channel: "ChatChannel", room: "lobby" };
  const chat = track(consumer, lobby);

  await step("connect with a token, subscribe, confirmed", async () => {
    await waitFor("connected", () => chat.seen.connected.length === 1);
    assertEqual(chat.seen.connected[0], { reconnected: false }, "connected info");
    assertEqual(consumer.connection.getProtocol(), "actioncable-v1-json", "subprotocol");
  });

  await step("a rejected subscription reaches rejected", async () => {
    const forbidden = track(consumer, { channel: "ChatChannel", room: "forbidden" });
    await waitFor("rejected", () => forbidden.seen.rejected === 1);
    assertEqual(forbidden.seen.connected.length, 0, "connected calls");
  });

  await step("perform reaches the channel", async () => {
    chat.subscription.perform("whoami");
    await waitFor("whoami answer", () => chat.seen.received.length === 1);
    assertEqual(chat.seen.received[0].user, "alice", "user");
    assertEqual(chat.seen.received[0].room, "lobby", "room");
    chat.subscription.perform("speak", { text: "hello <world>" });
    await waitFor("speak broadcast", () => chat.seen.received.length === 2);
    assertEqual(chat.seen.received[1], { text: "hello <world>", from: "alice" }, "speak");
  });

  await step("broadcasts reach received", async () => {
    const a = await http("GET", "/broadcast?stream=chat_lobby&text=via-control");
    assertEqual(a.status, 200, "control status");
    await waitFor("control broadcast", () => chat.seen.received.length === 3);
    assertEqual(chat.seen.received[2], { text: "via-control" }, "control broadcast");
    const b = await http(
      "POST",
      "/_broadcast",
      JSON.stringify({ stream: "chat_lobby", data: JSON.stringify({ text: "via-post" }) }),
      { "Content-Type": "application/json" },
    );
    assertEqual(b.status, 201, "POST /_broadcast status");
    await waitFor("posted broadcast", () => chat.seen.received.length === 4);
    assertEqual(chat.seen.received[3], { text: "via-post" }, "posted broadcast");
  });

  await step("unsubscribe stops broadcasts", async () => {
    const other = track(consumer, { channel: "ChatChannel", room: "other" });
    await waitFor("other connected", () => other.seen.connected.length === 1);
    await http("GET", "/broadcast?stream=chat_other&text=one");
    await waitFor("first message", () => other.seen.received.length === 1);
    other.subscription.unsubscribe();
    await sleep(200);
    await http("GET", "/broadcast?stream=chat_other&text=two");
    // Frames of one connection arrive in order: once this one is in, "two"
    // would have been too.
    await http("GET", "/broadcast?stream=chat_lobby&text=marker");
    await waitFor("marker", () => chat.seen.received.length === 5);
    assertEqual(chat.seen.received[4], { text: "marker" }, "marker");
    assertEqual(other.seen.received.length, 1, "messages after unsubscribe");
  });

  await step("an unauthorized connection does not reconnect", async () => {
    const before = opened.length;
    const bad = ActionCable.createConsumer(`ws://127.0.0.1:${port}/cable?token=bad`);
    const sub = track(bad, lobby);
    await waitFor("disconnected", () => sub.seen.disconnected.length === 1);
    assertEqual(sub.seen.disconnected[0], { willAttemptReconnect: false }, "disconnected info");
    assertEqual(bad.connection.monitor.isRunning(), false, "monitor running");
    await sleep(1500);
    assertEqual(opened.length - before, 1, "sockets opened for the bad token");
    assertEqual(sub.seen.connected.length, 0, "connected calls");
    bad.disconnect();
  });

  await step("after a server restart the client reconnects and resubscribes by itself", async () => {
    const exit = await stopServer();
    assertEqual(exit, { code: 0, signal: null }, "exit of cable-server on SIGTERM");
    await waitFor("disconnected", () => chat.seen.disconnected.length >= 1);
    assertEqual(chat.seen.disconnected[0], { willAttemptReconnect: true }, "disconnected info");
    const again = await startServer(`127.0.0.1:${port}`);
    assertEqual(again, port, "same port");
    // The monitor notices the stale connection (6 s without a frame, as
    // Rails' client is configured) and reopens; the welcome resubscribes.
    await waitFor("reconnected", () => chat.seen.connected.length === 2, 40000);
    assertEqual(chat.seen.connected[1], { reconnected: true }, "connected info");
    const count = chat.seen.received.length;
    chat.subscription.perform("speak", { text: "back" });
    await waitFor("speak after restart", () => chat.seen.received.length === count + 1);
    assertEqual(chat.seen.received[count], { text: "back", from: "alice" }, "speak");
  });

  consumer.disconnect();
}

const watchdog = setTimeout(() => {
  log("FAIL: the whole test took more than 120 s");
  if (server) server.kill("SIGKILL");
  process.exit(1);
}, 120000);

try {
  await main();
} catch (error) {
  if (!counts.failed) {
    counts.failed++;
    log(`FAIL: ${error.stack || error}`);
  }
} finally {
  clearTimeout(watchdog);
  if (server && server.exitCode === null) {
    await stopServer();
  }
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exit(counts.failed ? 1 : 0);
}
