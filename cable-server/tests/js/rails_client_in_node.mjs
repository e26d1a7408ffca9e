// The real Rails JS client (@rails/actioncable from npm) set up in Node as a
// browser page would give it: the `document` and `addEventListener` it
// expects, and a `ws` WebSocket that sends an Origin. CABLE_E2E_DEBUG=1 turns
// on the client's own logger.

import { createRequire } from "node:module";
import WebSocket from "ws";

const require = createRequire(import.meta.url);
// The package's `main` is a UMD build that Node can require.
export const ActionCable = require("@rails/actioncable");

// What a browser page gives the client and Node lacks.
globalThis.document ??= {
  visibilityState: "visible",
  addEventListener() {},
  removeEventListener() {},
};
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};

if (process.env.CABLE_E2E_DEBUG) ActionCable.logger.enabled = true;

// A browser sends Origin; `ws` does not unless told. Makes the client open
// its sockets with the Origin `origin()` returns when each is opened, and
// calls `onOpen(url)` for each.
export function sendOrigin(origin, onOpen = () => {}) {
  class BrowserLikeWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: origin() });
      onOpen(url);
    }
  }
  ActionCable.adapters.WebSocket = BrowserLikeWebSocket;
}
