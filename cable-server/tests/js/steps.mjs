// A script's steps: each passes or fails (counted in `counts`, logged with
// the time since start), and what the steps wait for and check.

export const counts = { passed: 0, failed: 0 };

export const log = (...args) => console.log(`[${(performance.now() / 1000).toFixed(2)}s]`, ...args);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function waitFor(what, predicate, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      let value;
      try {
        value = predicate();
      } catch (e) {
        clearInterval(timer);
        reject(e);
        return;
      }
      if (value) {
        clearInterval(timer);
        resolve(value);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 10);
  });
}

export function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

export function assert(condition, what) {
  if (!condition) throw new Error(what);
}

export async function step(name, body) {
  try {
    await body();
    counts.passed++;
    log(`PASS ${name}`);
  } catch (error) {
    counts.failed++;
    log(`FAIL ${name}: ${error.stack || error}`);
    throw error;
  }
}

// A subscription that records what it is told.
export function track(consumer, params) {
  const seen = { connected: [], received: [], rejected: 0, disconnected: [] };
  const subscription = consumer.subscriptions.create(params, {
    connected(info) { seen.connected.push(info); },
    received(data) { seen.received.push(data); },
    rejected() { seen.rejected++; },
    disconnected(info) { seen.disconnected.push(info); },
  });
  return { subscription, seen };
}
