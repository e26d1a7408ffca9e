// Load: N connections (default 1000) of the platformOS app, each connecting
// and subscribing to a conversate room through platformos_backend.mjs
// answering every connect and subscribe in DELAY_MS (50 ms). Then one
// broadcast per room (POST /_broadcast): every connection must get its
// room's message exactly once. Raw `ws` sockets speaking actioncable-v1-json
// (as @rails/actioncable does), all on loopback.
//
//   CABLE_PORT=... BROADCAST_KEY=... N=1000 node platformos_load.mjs
//
// Prints one JSON line: {"connections","confirmed","subscribes_per_sec",
// "subscribe_p50_ms","subscribe_p95_ms","subscribe_max_ms","received","lost"}.
// Exits 0 when all were confirmed and nothing was lost.

import WebSocket from "ws";

const PORT = Number(process.env.CABLE_PORT);
const BROADCAST_KEY = process.env.BROADCAST_KEY ?? "";
const N = Number(process.env.N ?? 1000);
const ROOMS = 10; // the backend puts user u<i> in room load-<i % 10>
const ORIGIN = `http://127.0.0.1:${PORT}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(i) {
  const room = `load-${i % ROOMS}`;
  const identifier = JSON.stringify({ channel: "conversate", room_id: room });
  const state = { i, room, sentAt: 0, confirmedAt: 0, rejected: false, received: [] };
  state.done = new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `ws://127.0.0.1:${PORT}/websocket?authenticity_token=csrf-u${i}&user=u${i}`,
      ["actioncable-v1-json"],
      { origin: ORIGIN },
    );
    state.ws = ws;
    ws.on("message", (raw) => {
      const frame = JSON.parse(String(raw));
      if (frame.type === "welcome") {
        state.sentAt = performance.now();
        ws.send(JSON.stringify({ command: "subscribe", identifier }));
      } else if (frame.type === "confirm_subscription") {
        state.confirmedAt = performance.now();
        resolve();
      } else if (frame.type === "reject_subscription") {
        state.rejected = true;
        resolve();
      } else if (frame.type === "disconnect") {
        reject(new Error(`u${i}: disconnect ${raw}`));
      } else if (frame.type === undefined && frame.message !== undefined) {
        state.received.push(frame.message);
      }
    });
    ws.on("error", reject);
  });
  return state;
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

const clients = [];
for (let i = 0; i < N; i++) clients.push(client(i));
const results = await Promise.allSettled(clients.map((c) => c.done));
const errors = results.filter((r) => r.status === "rejected");
const confirmed = clients.filter((c) => c.confirmedAt && !c.rejected);
const firstSent = Math.min(...clients.map((c) => c.sentAt).filter(Boolean));
const lastConfirmed = Math.max(...confirmed.map((c) => c.confirmedAt));
const latencies = confirmed.map((c) => c.confirmedAt - c.sentAt).sort((a, b) => a - b);

for (let r = 0; r < ROOMS; r++) {
  const response = await fetch(`http://127.0.0.1:${PORT}/_broadcast`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BROADCAST_KEY}` },
    body: JSON.stringify({ stream: `conversate:load-${r}`, data: JSON.stringify({ message: `to load-${r}` }) }),
  });
  if (response.status !== 201) throw new Error(`broadcast: ${response.status}`);
}
const deadline = Date.now() + 10000;
while (Date.now() < deadline && clients.some((c) => c.received.length < 1)) await sleep(20);
await sleep(200);
const lost = clients.filter(
  (c) => c.received.length !== 1 || c.received[0].message !== `to ${c.room}`,
).length;

const report = {
  connections: N,
  confirmed: confirmed.length,
  errors: errors.length,
  subscribes_per_sec: Math.round(confirmed.length / ((lastConfirmed - firstSent) / 1000)),
  subscribe_p50_ms: Math.round(percentile(latencies, 50)),
  subscribe_p95_ms: Math.round(percentile(latencies, 95)),
  subscribe_max_ms: Math.round(latencies[latencies.length - 1]),
  received: clients.reduce((n, c) => n + c.received.length, 0),
  lost,
};
console.log(JSON.stringify(report));
for (const c of clients) c.ws.terminate();
if (errors.length) console.error(String(errors[0].reason));
process.exit(confirmed.length === N && lost === 0 && !errors.length ? 0 : 1);
