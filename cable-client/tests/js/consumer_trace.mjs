// Runs a scenario (JSON, argv[2]) through the real @rails/actioncable consumer
// in virtual time and prints what it did as a JSON trace: the sockets it
// opened and closed, the frames it sent, the callbacks it made, each with its
// virtual time in ms. cable-client/tests/js_consumer.rs runs the same scenario
// through cable-proto's Consumer and compares.
//
// Virtual time: Date and setTimeout are replaced by a clock that only moves
// between steps (timers fire at their exact due time, delays truncated to
// whole ms as browsers do); Math.random() is 0.5. The WebSocket is a fake
// that the scenario opens, feeds and drops.
//
// ACTIONCABLE: the path of @rails/actioncable's ESM build.
import { readFileSync } from "node:fs";

// A real epoch: the monitor takes a time of 0 for "never" (`startedAt && ...`).
const EPOCH = 1_700_000_000_000;
let now = EPOCH;
let seq = 0;
let timers = [];
globalThis.setTimeout = (fn, delay = 0) => {
  const id = ++seq;
  timers.push({ id, due: now + Math.max(0, Math.trunc(Number(delay) || 0)), fn });
  return id;
};
globalThis.clearTimeout = (id) => {
  timers = timers.filter((t) => t.id !== id);
};
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(now);
    else super(...args);
  }
  static now() {
    return now;
  }
};
globalThis.addEventListener = () => {};
globalThis.removeEventListener = () => {};
Math.random = () => 0.5;

const trace = [];
const log = (...entry) => trace.push([now - EPOCH, ...entry]);

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  constructor(url, protocols) {
    this.readyState = FakeWebSocket.CONNECTING;
    this.protocol = "";
    log("connect", protocols.join(", "));
    FakeWebSocket.current = this;
  }
  send(text) {
    log("send", text);
  }
  close() {
    log("close");
    this.readyState = FakeWebSocket.CLOSING;
    setTimeout(() => {
      this.readyState = FakeWebSocket.CLOSED;
      this.onclose && this.onclose({});
    }, 0);
  }
}

const ac = await import(process.env.ACTIONCABLE);
ac.adapters.WebSocket = FakeWebSocket;
ac.adapters.logger = { log() {} };

function runUntil(t) {
  for (;;) {
    timers.sort((a, b) => a.due - b.due || a.id - b.id);
    const next = timers[0];
    if (!next || next.due > t) break;
    timers.shift();
    now = next.due;
    next.fn();
  }
  now = t;
}

const scenario = JSON.parse(readFileSync(process.argv[2], "utf8"));
const consumer = ac.createConsumer("ws://cable.test/cable");
const subs = [];
for (const step of scenario) {
  runUntil(EPOCH + step.at);
  const ws = FakeWebSocket.current;
  switch (step.op) {
    case "subscribe": {
      const index = subs.length;
      subs.push(
        consumer.subscriptions.create(step.params, {
          connected: ({ reconnected }) => log("connected", index, reconnected),
          rejected: () => log("rejected", index),
          received: (message) => log("received", index, JSON.stringify(message)),
          disconnected: ({ willAttemptReconnect }) => log("disconnected", index, willAttemptReconnect),
        }),
      );
      break;
    }
    case "unsubscribe":
      subs[step.sub].unsubscribe();
      break;
    case "perform":
      subs[step.sub].perform(step.action, step.data);
      break;
    case "open":
      ws.readyState = FakeWebSocket.OPEN;
      ws.protocol = step.protocol;
      ws.onopen && ws.onopen({});
      break;
    case "frame":
      ws.onmessage && ws.onmessage({ data: step.text });
      break;
    case "drop":
      ws.readyState = FakeWebSocket.CLOSED;
      ws.onclose && ws.onclose({});
      break;
    case "connect":
      consumer.connect();
      break;
    case "disconnect":
      consumer.disconnect();
      break;
    case "end":
      break;
    default:
      throw new Error(`unknown op ${step.op}`);
  }
}
process.stdout.write(JSON.stringify(trace) + "\n");
