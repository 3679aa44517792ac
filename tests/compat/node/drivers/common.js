"use strict";
// Shared by the drivers: argument parsing, a loopback-only network guard, the JSON result.
//
// Contract with tests/compat/node_env.py: a driver prints exactly one JSON object on stdout
// (last line) and exits 0 when the scenario ran, whatever the server answered (the Python
// test asserts on the answers). The SDKs' own console.log chatter goes to stderr.

const dns = require("node:dns");
const http = require("node:http");
const https = require("node:https");

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

// The SDK logs requests, keys' base64 and responses with console.log: keep stdout for JSON.
for (const name of ["log", "info", "debug", "warn"]) {
  console[name] = (...args) => console.error(...args);
}

const outbound = []; // non-loopback destinations something tried to reach (should stay empty)
const unhandled = []; // unhandled promise rejections (e.g. TokenHandler.storeTokens failures)

process.on("unhandledRejection", (reason) => {
  unhandled.push(describe(reason));
});

function describe(value) {
  if (value instanceof Error) {
    return `${value.name}: ${value.message}`;
  }
  if (typeof value === "string") {
    return value;
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function hostOf(target) {
  if (typeof target === "string") {
    try {
      return new URL(target).hostname;
    } catch {
      return target;
    }
  }
  if (target instanceof URL) {
    return target.hostname;
  }
  if (target && typeof target === "object") {
    return target.hostname || (target.host || "").replace(/:\d+$/, "") || "localhost";
  }
  return "localhost";
}

function isLoopback(host) {
  return LOOPBACK.has(String(host).toLowerCase());
}

function refuse(what, host) {
  outbound.push({ via: what, host });
  const err = new Error(`network guard: refused ${what} to ${host} (only 127.0.0.1 allowed)`);
  err.code = "ENETUNREACH";
  return err;
}

// Belt and braces behind the axios interceptors: nothing in this process may leave loopback.
function installNetworkGuard() {
  for (const [name, mod] of [
    ["http", http],
    ["https", https],
  ]) {
    for (const fn of ["request", "get"]) {
      const original = mod[fn];
      mod[fn] = function guarded(target, ...rest) {
        const host = hostOf(target);
        if (!isLoopback(host)) {
          throw refuse(`${name}.${fn}`, host);
        }
        return original.call(this, target, ...rest);
      };
    }
  }
  const lookup = dns.lookup;
  dns.lookup = function guardedLookup(hostname, ...rest) {
    if (!isLoopback(hostname)) {
      const callback = rest[rest.length - 1];
      const err = refuse("dns.lookup", hostname);
      if (typeof callback === "function") {
        process.nextTick(() => callback(err));
        return undefined;
      }
      throw err;
    }
    return lookup.call(this, hostname, ...rest);
  };
  if (typeof globalThis.fetch === "function") {
    const fetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const host = hostOf(typeof input === "object" && input.url ? input.url : input);
      if (!isLoopback(host)) {
        return Promise.reject(refuse("fetch", host));
      }
      return fetch(input, init);
    };
  }
}

// --name value / --flag / positional; repeated options collect into arrays.
function parseArgs(argv) {
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    let key;
    let value;
    if (eq > 0) {
      key = arg.slice(2, eq);
      value = arg.slice(eq + 1);
    } else {
      key = arg.slice(2);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        value = true;
      } else {
        value = next;
        i++;
      }
    }
    if (key in options) {
      options[key] = [].concat(options[key], value);
    } else {
      options[key] = value;
    }
  }
  return { positional, options };
}

function required(options, key, envName) {
  const value = options[key] ?? (envName ? process.env[envName] : undefined);
  if (value === undefined || value === true || value === "") {
    throw new Error(`missing --${key}${envName ? ` (or ${envName})` : ""}`);
  }
  return value;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function emit(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run `main`, print its result (plus guard/unhandled records) as JSON, and exit. Exit code 0
// when the scenario ran; 2 when the driver itself broke (bad arguments, bundle missing...).
function run(main) {
  installNetworkGuard();
  const hardTimeout = Number(process.env.AUTHDEVICE_DRIVER_TIMEOUT || 240) * 1000;
  const timer = setTimeout(() => {
    emit({ ok: false, driverError: `driver timed out after ${hardTimeout} ms`, outbound, unhandled });
    process.exit(3);
  }, hardTimeout);
  timer.unref();
  Promise.resolve()
    .then(main)
    .then(
      async (result) => {
        await sleep(50); // let the SDK's un-awaited storage writes settle
        emit({ ok: true, ...result, outbound, unhandled });
        process.exit(0);
      },
      (err) => {
        emit({ ok: false, driverError: describe(err), stack: err && err.stack, outbound, unhandled });
        process.exit(2);
      },
    );
}

module.exports = { describe, emit, isLoopback, outbound, parseArgs, required, run, sleep, unhandled };
