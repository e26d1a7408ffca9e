// Jac Cloud's JavaScript snippets as its doc shows them
// (../shared/seeds/jac-cloud-websocket.md): `new WebSocket(".../websocket")`,
// the npm `ws` library with an `Authorization` header, `change_user` on open,
// the user/channel/client/connection events and a walker with `response`,
// against cable-server `--mount /websocket=jac` in front of the real Jac
// Cloud app (its walkers, its users). The Rust test tests/jac_backend.rs
// starts both and sets:
//
//   JAC_WS     ws://127.0.0.1:PORT/websocket   (cable-server)
//   JAC_HTTP   http://127.0.0.1:PORT           (the Jac Cloud app)
//
// Prints "N passed, M failed" and exits 0 when every step passed.

import assert from "node:assert/strict";
import WebSocket from "ws";

const WS = process.env.JAC_WS;
const HTTP = process.env.JAC_HTTP;
const PUBLIC = "n::000000000000000000000001";

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

// The doc's "Consuming Events": every message JSON.parse'd, kept in order.
function connect(url = WS, options = undefined) {
  const client = new WebSocket(url, options);
  client.received = [];
  client.waiters = [];
  client.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    client.received.push(msg);
    for (const w of client.waiters.splice(0)) w();
  };
  return client;
}

async function next(client, ms = 5000) {
  const deadline = Date.now() + ms;
  while (client.received.length === 0) {
    if (Date.now() > deadline) throw new Error("no message in time");
    await new Promise((r) => {
      client.waiters.push(r);
      setTimeout(r, 50);
    });
  }
  return client.received.shift();
}

async function silent(client, ms = 300) {
  await sleep(ms);
  assert.deepEqual(client.received, []);
}

async function opened(client) {
  if (client.readyState === WebSocket.OPEN) return;
  await new Promise((resolve, reject) => {
    client.once("open", resolve);
    client.once("error", reject);
  });
}

async function user(email) {
  const body = JSON.stringify({ email, password: "jac-node-test-password" });
  const headers = { "content-type": "application/json" };
  await fetch(`${HTTP}/user/register`, { method: "POST", headers, body });
  const login = await (await fetch(`${HTTP}/user/login`, { method: "POST", headers, body })).json();
  return { token: login.token, root: "n::" + login.user.root_id };
}

const alice = await user("alice-node@jacref.io");
const bob = await user("bob-node@jacref.io");

let pub, a1, a2, b, room;

await step("NOT AUTHENTICATED: new WebSocket(url) gets its connection info", async () => {
  pub = connect();
  const info = await next(pub);
  assert.equal(info.type, "connection");
  assert.equal(info.data.root_id, PUBLIC);
  assert.match(info.data.client_id, /^\d+:[0-9a-f]{32}$/);
  assert.match(info.data.channel_id, /^\d+:[0-9a-f]{32}$/);
});

await step("AUTHENTICATED - NPM WS LIBRARY: the Authorization header", async () => {
  a1 = connect(`${WS}?channel_id=room-js`, { headers: { Authorization: `Bearer ${alice.token}` } });
  const info = await next(a1);
  assert.equal(info.data.root_id, alice.root);
  assert.equal(info.data.channel_id, "room-js");
});

await step("AUTHENTICATED - JS LIBRARY: change_user on open", async () => {
  a2 = connect();
  a2.onopen = () => {
    a2.send(JSON.stringify({ type: "change_user", token: `Bearer ${alice.token}` }));
  };
  const first = await next(a2);
  assert.equal(first.data.root_id, PUBLIC);
  const second = await next(a2);
  assert.equal(second.type, "connection");
  assert.equal(second.data.root_id, alice.root);
  assert.equal(second.data.client_id, first.data.client_id);
  assert.equal(second.data.channel_id, first.data.channel_id);
});

await step("TRIGGER CONNECTION EVENT: the same info again", async () => {
  a2.send(JSON.stringify({ type: "connection" }));
  const info = await next(a2);
  assert.equal(info.data.root_id, alice.root);
});

await step("TRIGGER USER EVENT: every socket of the user, the data verbatim, no ack", async () => {
  b = connect(`${WS}?channel_id=room-js`, { headers: { Authorization: `Bearer ${bob.token}` } });
  await next(b);
  const data = { type: "chat", data: { any_field: "any_value" } };
  b.send(JSON.stringify({ type: "user", root_ids: [alice.root], data }));
  assert.deepEqual(await next(a1), data);
  assert.deepEqual(await next(a2), data);
  await silent(b);
  await silent(pub, 0);
});

await step("TRIGGER CHANNEL EVENT: every socket of the channel, sender included", async () => {
  const data = { type: "chat", data: { any_field: "to the room" } };
  b.send(JSON.stringify({ type: "channel", channel_ids: ["room-js"], data }));
  assert.deepEqual(await next(a1), data);
  assert.deepEqual(await next(b), data);
  await silent(a2);
});

await step("TRIGGER CLIENT EVENT: one socket by client_id", async () => {
  pub.send(JSON.stringify({ type: "connection" }));
  const target = (await next(pub)).data.client_id;
  const data = { type: "chat", data: { any_field: "direct" } };
  b.send(JSON.stringify({ type: "client", client_ids: [target], data }));
  assert.deepEqual(await next(pub), data);
  await silent(b);
});

await step("TRIGGER WALKER EVENT: response true gets the walker's reports", async () => {
  pub.send(JSON.stringify({ type: "walker", walker: "echo_report", response: true, context: { val: 7 } }));
  assert.deepEqual(await next(pub), { status: 200, reports: [{ echo: 7 }, "second"] });
  a1.send(JSON.stringify({ type: "walker", walker: "echo_report_auth", response: true, context: { val: 5 } }));
  assert.deepEqual(await next(a1), { status: 200, reports: [{ echo_auth: 5 }] });
});

await step("walker without response: nothing comes back; errors do", async () => {
  pub.send(JSON.stringify({ type: "walker", walker: "echo_report", context: { val: 1 } }));
  pub.send(JSON.stringify({ type: "walker", walker: "echo_report_auth", response: true }));
  assert.deepEqual(await next(pub), {
    type: "walker",
    error: "Event echo_report_auth requires to be authenticated!",
  });
  pub.send(JSON.stringify({ type: "walker", walker: "no_such_walker", response: false }));
  assert.deepEqual(await next(pub), {
    type: "walker",
    error: "Invalid request! Please use valid walker event!",
  });
  pub.send(JSON.stringify({ type: "walker", walker: "echo_report", response: true, context: { val: "abc" } }));
  const error = await next(pub);
  assert.equal(error.error[0].type, "int_parsing");
  assert.deepEqual(error.error[0].loc, ["val"]);
  await silent(pub);
});

await step("change_user without a token falls back to the header; a bad one is public", async () => {
  a1.send(JSON.stringify({ type: "change_user" }));
  assert.equal((await next(a1)).data.root_id, alice.root);
  a1.send(JSON.stringify({ type: "change_user", token: "Bearer bad" }));
  assert.equal((await next(a1)).data.root_id, PUBLIC);
});

for (const c of [pub, a1, a2, b]) c?.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
