// A platformOS-like backend for cable-server's `--app platformos`: a plain
// node:http server speaking AnyCable's RPC over HTTP
// (/_anycable/{connect,command,disconnect}), with the liquid partials of
// platformos-websockets.md as JavaScript:
//
// - connect: the user is the `user` query parameter of env.url; an
//   `authenticity_token` there must be `csrf-<user>` (the CSRF check the
//   server leaves to the backend); a wrong one: status 2 (failure).
// - subscribed.liquid: `true` (status 1) when the user participates in the
//   room (ROOMS below; room ids compared as strings, so 12 and "12" are one
//   room), else `false` (status 2); room "slow" answers after SLOW_MS.
// - receive.liquid: `false` (status 2) for a message containing "veto";
//   a message containing "slow" answers after SLOW_MS; `delay_ms` in the
//   data delays the answer (out-of-order answers if calls overlapped).
// - DELAY_MS (env) delays every connect and subscribe answer (load test).
//
//   DELAY_MS=0 SLOW_MS=2500 node platformos_backend.mjs
//
// Prints `listening <port>` once ready (loopback, a free port). GET
// /_test/log answers every call seen: {kind, user, room, data, start, end}.

import http from "node:http";

const DELAY_MS = Number(process.env.DELAY_MS ?? 0);
const SLOW_MS = Number(process.env.SLOW_MS ?? 2500);
const ROOMS = { 12: ["alice", "bob"], 13: ["alice"], slow: ["alice"] };
const LOAD_ROOMS = 10; // load users "u<N>" participate in room "load-<N % 10>"
const calls = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const welcome = JSON.stringify({ type: "welcome" });

function participates(user, room) {
  if (/^u\d+$/.test(user)) return room === `load-${Number(user.slice(1)) % LOAD_ROOMS}`;
  return (ROOMS[room] ?? []).includes(user);
}

async function connect(body) {
  const url = new URL(body.env.url);
  const user = url.searchParams.get("user") ?? "";
  const token = url.searchParams.get("authenticity_token");
  const call = { kind: "connect", user, token, start: performance.now() };
  calls.push(call);
  if (DELAY_MS) await sleep(DELAY_MS);
  call.end = performance.now();
  if (!user || (token !== null && token !== `csrf-${user}`)) {
    return {
      status: 2,
      transmissions: [JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false })],
    };
  }
  return { status: 1, identifiers: JSON.stringify({ user }), transmissions: [welcome] };
}

async function command(body) {
  const { user } = JSON.parse(body.connection_identifiers);
  const params = JSON.parse(body.identifier);
  const room = String(params.room_id);
  const call = { kind: body.command, user, room, start: performance.now() };
  calls.push(call);
  if (body.command === "subscribe") {
    if (DELAY_MS) await sleep(DELAY_MS);
    if (room === "slow") await sleep(SLOW_MS);
    call.end = performance.now();
    return { status: participates(user, room) ? 1 : 2 };
  }
  if (body.command === "message") {
    const data = JSON.parse(body.data);
    call.data = data;
    const text = String(data.message ?? "");
    if (text.includes("slow")) await sleep(SLOW_MS);
    if (data.delay_ms) await sleep(data.delay_ms);
    call.end = performance.now();
    // receive.liquid: "false" when the user is not in the room or the
    // message is not valid (here: it contains "veto").
    if (!participates(user, room) || text.includes("veto")) return { status: 2 };
    return { status: 1 };
  }
  call.end = performance.now();
  return { status: 1 };
}

const server = http.createServer((req, res) => {
  let chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const reply = (status, value) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    try {
      if (req.method === "GET" && req.url === "/_test/log") return reply(200, calls);
      if (req.method === "POST" && req.url === "/_test/reset") {
        calls.length = 0;
        return reply(200, {});
      }
      const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
      if (req.url === "/_anycable/connect") return reply(200, await connect(body));
      if (req.url === "/_anycable/command") return reply(200, await command(body));
      if (req.url === "/_anycable/disconnect") return reply(200, { status: 1 });
      reply(404, {});
    } catch (error) {
      reply(200, { status: 0, error_msg: String(error) });
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
