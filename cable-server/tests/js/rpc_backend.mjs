// A small AnyCable RPC backend built with the real @anycable/serverless-js,
// for the cable-server RPC tests. It serves AnyCable's RPC over HTTP at
// /_anycable/{connect,command,disconnect}, broadcasts through cable-server's
// POST /_broadcast, and records every call for the test at GET /_test/log.
//
//   RPC_SECRET=s node --import ./rpc_hooks.mjs rpc_backend.mjs
//
// Prints `listening <port>` once ready (loopback, a free port).

import http from "node:http";
import {
  Application,
  Channel,
  broadcaster,
  handler,
} from "@anycable/serverless-js";

const SECRET = process.env.RPC_SECRET ?? "";
const calls = []; // {method, sid, authorization, body, answer}
const events = []; // what the channels saw
let broadcast = async () => {
  throw new Error("broadcast URL not configured");
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class ChatChannel extends Channel {
  async subscribed(handle, params) {
    if (params.room === "secret") {
      handle.reject();
      return;
    }
    handle.streamFrom(`chat_${params.room}`);
    handle.state = { room: params.room, count: 0 };
    handle.transmit({ hello: handle.identifiers.user });
  }

  async unsubscribed(handle, params) {
    events.push({ event: "unsubscribed", user: handle.identifiers?.user, room: params.room });
  }

  async handleAction(handle, params, action, payload) {
    // `subscription.send(data)` sends no action: Rails calls `receive`.
    return super.handleAction(handle, params, action ?? "receive", payload);
  }

  async receive(handle, _params, payload) {
    handle.transmit({ received: payload });
  }

  async speak(handle, params, payload) {
    await broadcast(`chat_${params.room}`, {
      text: payload.text,
      from: handle.identifiers.user,
    });
  }

  async count(handle) {
    handle.state.count += 1;
    handle.transmit({ count: handle.state.count, cuser: handle.env.cstate?.user });
  }

  async follow(handle, params) {
    handle.streamFrom(`extra_${params.room}`);
    handle.transmit({ following: `extra_${params.room}` });
  }

  async unfollow(handle, params) {
    handle.stopStreamFrom(`extra_${params.room}`);
    handle.transmit({ unfollowed: `extra_${params.room}` });
  }

  async slow(handle) {
    await sleep(3000);
    handle.transmit({ slow: "done" });
  }

  async boom() {
    throw new Error("boom");
  }
}

class TestApp extends Application {
  async connect(handle) {
    const url = new URL(handle.env.url);
    const token = url.searchParams.get("token");
    if (token === "slow") await sleep(3000);
    if (token === "boom") throw new Error("boom");
    if (!token || token === "bad") {
      handle.reject();
      return;
    }
    handle.identifiedBy({ user: token });
    handle.env.cstate = { ...(handle.env.cstate ?? {}), user: token };
  }

  async handleClose(handle, subscriptions) {
    events.push({
      event: "disconnect",
      user: handle.identifiers?.user,
      subscriptions,
    });
    return super.handleClose(handle, subscriptions);
  }
}

const app = new TestApp();
app.registerChannel("ChatChannel", new ChatChannel());

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function reply(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "POST" && req.url.startsWith("/_anycable/")) {
      const text = await readBody(req);
      const method = req.url.split("/").pop();
      const call = {
        method,
        sid: req.headers["x-anycable-meta-sid"] ?? null,
        authorization: req.headers.authorization ?? null,
        body: JSON.parse(text),
      };
      calls.push(call);
      if (SECRET && req.headers.authorization !== `Bearer ${SECRET}`) {
        reply(res, 401, { error: "unauthorized" });
        return;
      }
      // What serverless-js' handlers read: a fetch-style request.
      const request = {
        url: `http://127.0.0.1${req.url}`,
        headers: { get: (name) => req.headers[name.toLowerCase()] ?? null },
        body: [Buffer.from(text)],
      };
      const answer = await handler(request, app);
      call.answer = answer;
      reply(res, 200, answer);
    } else if (req.method === "POST" && req.url === "/_test/config") {
      const config = JSON.parse(await readBody(req));
      broadcast = broadcaster(config.broadcast_url, config.broadcast_key);
      reply(res, 200, { ok: true });
    } else if (req.method === "GET" && req.url === "/_test/log") {
      reply(res, 200, { calls, events });
    } else {
      reply(res, 404, { error: "not found" });
    }
  } catch (error) {
    reply(res, 500, { error: String(error) });
  }
});

server.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
