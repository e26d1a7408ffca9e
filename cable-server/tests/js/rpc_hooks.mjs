// @anycable/serverless-js 0.1.0 imports its own modules without file
// extensions (`from './rpc'`), which plain Node's ESM loader refuses. This
// resolve hook tries `<specifier>/index.js`, then `<specifier>.js`, for
// relative specifiers that do not resolve as written.
//
//   node --import ./rpc_hooks.mjs rpc_backend.mjs

import { register } from "node:module";

if (!globalThis.__cableHooksRegistered) {
  globalThis.__cableHooksRegistered = true;
  register(import.meta.url, import.meta.url);
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith("./") || specifier.startsWith("../");
    const retry = ["ERR_MODULE_NOT_FOUND", "ERR_UNSUPPORTED_DIR_IMPORT"].includes(error?.code);
    if (!relative || !retry) throw error;
    for (const candidate of [`${specifier}/index.js`, `${specifier}.js`]) {
      try {
        return await next(candidate, context);
      } catch {
        // try the next form
      }
    }
    throw error;
  }
}
