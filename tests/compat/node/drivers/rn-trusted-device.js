#!/usr/bin/env node
"use strict";
// Drive react-native-cotter@0.3.6's real TrustedDevice code (bundled by ../build.mjs) as one
// phone against a live server, one step per process. A phone's secure storage (its Ed25519
// key pair, tokens, stored user) lives in a JSON state file between steps, so two state files
// are two phones; inside a process every phone is a fresh copy of the whole bundle.
//
//   node drivers/rn-trusted-device.js <command> --url http://127.0.0.1:PORT --api-key KEY \
//        --phone /tmp/phone-a.json [--user-id CLIENT_USER_ID --cotter-user-id ID] [options]
//   (--url / --api-key default to $AUTHDEVICE_URL / $AUTHDEVICE_API_KEY_ID)
//
// Commands (each prints one JSON object on stdout; see common.js):
//   create-user --identifier E    Requests.registerUserToCotter([], E)    A1 POST /user/create
//   get-user --identifier E       Requests.getUserByIdentifier(E)         A2 GET /user?identifier=
//   enrol [--no-user-id]          TrustedDevice.enrollDeviceWithCotterUserID (userID set -> A5 PUT
//                                 /user/:uid?oauth_token=true; --no-user-id -> A6 /user/methods)
//   enrolled                      TrustedDevice.trustedDeviceEnrolled      A7
//   login [--event LOGIN]         TrustedDevice.authorizeDevice(.., true)  B1 ?oauth_token=true
//   request [--event LOGIN]       TrustedDevice.requestAuthFromNonTrusted  B2, then polls B4 as
//                                 the auth-request modal does until approved/error/deadline
//   sign-in --identifier E        Cotter.signInWithDevice(E)               A2, A7, then B1 or B2+B4
//   respond --decision approve|reject
//                                 TrustedDevice.getNewEvent + the approve modal's Yes/No  B5, B3
//   qr                            TrustedDevice.trustThisDevice, then the QR modal's polling of A7
//   enrol-other --qr TEXT         TrustedDevice.scanQRCode + submitScannedCode  B1 register_new_device
//   remove                        TrustedDevice.removeDevice               A7, A5 enrolled:false
//   refresh                       TokenHandler.getTokensFromRefreshToken   C2 POST /token
//
// Options: --ready-file F (request/sign-in/qr: written with {"eventID"} / {"qr"} once the modal
// shows), --deadline S, --poll S, --result-delay S (modal timings; defaults are the SDK's),
// --geoip stub|offline (what http://geoip-db.com/json/ answers: a canned TEST-NET body, or a
// network error so the SDK falls back to "unknown"; the real host is never contacted),
// --device-id/--manufacturer/--version (react-native-device-info values for a new phone).

const fs = require("node:fs");
const path = require("node:path");
const { describe, isLoopback, parseArgs, required, run, sleep } = require("./common");
const { installModals } = require("./rn-modals");

const BUNDLE = path.join(__dirname, "..", "build", "rn-trusted-device.cjs");
const TOKEN_KEYS = ["ACCESS_TOKEN", "ID_TOKEN", "REFRESH_TOKEN", "TOKEN_TYPE"];
const GEOIP_STUB = {
  country_code: "ZZ",
  country_name: "Testland",
  city: "Testville",
  postal: null,
  latitude: 0,
  longitude: 0,
  IPv4: "203.0.113.7",
  state: "Test",
};

// TrustedDevice.enrollDevice*/trustThisDevice assign an undeclared `seed` inside class
// methods (always strict code) -> ReferenceError unless the global exists (reference §5.4).
if (!("seed" in globalThis)) {
  globalThis.seed = undefined;
}

function clone(value) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return describe(value);
  }
}

function errorValue(err) {
  if (err instanceof Error) {
    return { error: `${err.name}: ${err.message}` };
  }
  return clone(err);
}

class Phone {
  constructor(statePath, options) {
    this.statePath = statePath;
    this.requests = [];
    this.modalLog = [];
    delete require.cache[require.resolve(BUNDLE)];
    this.sdk = require(BUNDLE); // a fresh module graph: this phone's own storage and axios
    const state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, "utf8")) : {};
    this.state = state;
    for (const [key, value] of Object.entries(state.storage || {})) {
      this.sdk.secureStore.set(key, value);
    }
    const device = state.device || {
      manufacturer: options.manufacturer || "TestMaker",
      deviceId: options["device-id"] || path.basename(statePath, ".json"),
      readableVersion: options.version || "1.0",
    };
    Object.assign(this.sdk.deviceInfo, device);
    this.sdk.Constants.setBaseURL(`${options.url.replace(/\/+$/, "")}/api/v0`);
    this.geoip = options.geoip || "stub";
    this.interceptTraffic();
  }

  // Log every request the SDK makes; answer geoip-db.com locally; refuse anything else
  // that is not loopback (the http/dns guard in common.js is the second line).
  interceptTraffic() {
    const axios = this.sdk.axios;
    axios.interceptors.request.use((config) => {
      const url = new URL(config.url);
      const headers = {};
      for (const name of ["API_KEY_ID", "API_SECRET_KEY", "Authorization", "Content-type"]) {
        if (config.headers && config.headers[name] !== undefined) {
          headers[name] = config.headers[name];
        }
      }
      const entry = {
        method: String(config.method || "get").toUpperCase(),
        url: config.url,
        path: url.pathname + url.search,
        headers,
        body: clone(config.data),
      };
      this.requests.push(entry);
      config.__entry = entry;
      if (url.hostname === "geoip-db.com") {
        entry.stubbed = this.geoip;
        config.adapter = (cfg) =>
          this.geoip === "stub"
            ? Promise.resolve({ data: GEOIP_STUB, status: 200, statusText: "OK", headers: {}, config: cfg, request: {} })
            : Promise.reject(new Error("geoip-db.com unreachable (stubbed offline)"));
        return config;
      }
      if (!isLoopback(url.hostname)) {
        entry.refused = true;
        return Promise.reject(new Error(`refused non-loopback request to ${url.hostname}`));
      }
      return config;
    });
    axios.interceptors.response.use(
      (response) => {
        const entry = response.config && response.config.__entry;
        if (entry && !entry.stubbed) {
          entry.status = response.status;
          entry.response = clone(response.data);
        }
        return response;
      },
      (error) => {
        const entry = error && error.config && error.config.__entry;
        if (entry && !entry.stubbed) {
          entry.status = error.response ? error.response.status : null;
          entry.response = error.response ? clone(error.response.data) : undefined;
          entry.error = error.message;
        }
        return Promise.reject(error);
      },
    );
  }

  storage() {
    return Object.fromEntries(this.sdk.secureStore.entries());
  }

  publicKey() {
    for (const [key, value] of this.sdk.secureStore.entries()) {
      if (key.startsWith("COTTER_TRUSTED_DEVICE_KEY") && key.endsWith("PUB_KEY")) {
        return value;
      }
    }
    return null;
  }

  tokens() {
    const store = this.sdk.secureStore;
    const out = {};
    for (const key of TOKEN_KEYS) {
      if (store.has(key)) {
        out[key.toLowerCase()] = store.get(key);
      }
    }
    if (out.id_token) {
      const id = new this.sdk.CotterIDToken(out.id_token);
      out.id_token_claims = {
        sub: id.getID(),
        client_user_id: id.getClientUserID(),
        identifier: id.getIdentifier(),
        auth_time: id.getAuthTime(),
        aud: id.getAudience(),
        exp: id.getExpiration(),
      };
    }
    if (out.access_token) {
      out.access_token_claims = new this.sdk.CotterAccessToken(out.access_token).payload;
    }
    return out;
  }

  storedUser() {
    const raw = this.sdk.secureStore.get("COTTER_USER_STORAGE");
    return raw ? JSON.parse(raw) : null;
  }

  save() {
    const data = { device: { ...this.sdk.deviceInfo }, storage: this.storage() };
    const tmp = `${this.statePath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(data, null, 2));
    fs.renameSync(tmp, this.statePath);
  }

  report(extra) {
    return {
      ...extra,
      publicKey: this.publicKey(),
      tokens: this.tokens(),
      storedUser: this.storedUser(),
      requests: this.requests,
      modalLog: this.modalLog,
    };
  }
}

function writeReady(file, data) {
  if (!file) {
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data));
  fs.renameSync(tmp, file);
}

// Resolve on the SDK's onSuccess/onError callbacks (or a deadline of our own).
function callbacks(deadlineSeconds) {
  let settle;
  const done = new Promise((resolve) => {
    settle = resolve;
  });
  const timer = setTimeout(() => settle({ outcome: "driver-timeout" }), deadlineSeconds * 1000);
  return {
    done: done.finally(() => clearTimeout(timer)),
    onSuccess: (resp) => settle({ outcome: "success", response: clone(resp) }),
    onError: (msg, err) => settle({ outcome: "error", message: msg, error: errorValue(err) }),
  };
}

async function main() {
  const { positional, options } = parseArgs(process.argv.slice(2));
  const command = positional[0];
  options.url = required(options, "url", "AUTHDEVICE_URL");
  const apiKey = required(options, "api-key", "AUTHDEVICE_API_KEY_ID");
  const phone = new Phone(required(options, "phone"), options);
  const timing = {};
  if (options.deadline !== undefined) {
    timing.AUTH_REQUEST_DEADLINE = Number(options.deadline);
    timing.QR_SHOW_DEADLINE = Number(options.deadline);
  }
  if (options.poll !== undefined) {
    timing.AUTH_REQUEST_POLL = Number(options.poll);
    timing.QR_SHOW_SECONDS_TO_RETRY = Number(options.poll);
  }
  if (options["result-delay"] !== undefined) {
    timing.RESULT_DURATION = Number(options["result-delay"]);
  }
  installModals(phone, timing);
  const waitLimit = Number(options.deadline || 200) + 30;
  const userID = options["no-user-id"] ? null : options["user-id"] || null;
  const cotterUserID = options["cotter-user-id"] || null;
  const device = () => new phone.sdk.TrustedDevice(apiKey, userID, [], cotterUserID);
  let result;

  switch (command) {
    case "create-user":
    case "get-user": {
      const requests = new phone.sdk.Requests(apiKey);
      const identifier = required(options, "identifier");
      try {
        const user =
          command === "create-user"
            ? await requests.registerUserToCotter([], identifier)
            : await requests.getUserByIdentifier(identifier);
        result = { outcome: "success", response: clone(user) };
      } catch (err) {
        result = { outcome: "error", error: errorValue(err) };
      }
      break;
    }
    case "enrol": {
      const cb = callbacks(waitLimit);
      await device().enrollDeviceWithCotterUserID(
        required(options, "cotter-user-id"),
        cb.onSuccess,
        cb.onError,
        true,
      );
      result = await cb.done;
      break;
    }
    case "enrolled": {
      result = { enrolled: await device().trustedDeviceEnrolled() };
      break;
    }
    case "login": {
      const cb = callbacks(waitLimit);
      await device().authorizeDevice(options.event || "LOGIN", cb.onSuccess, cb.onError, true);
      result = await cb.done;
      break;
    }
    case "request":
    case "sign-in": {
      const cb = callbacks(waitLimit);
      phone.onAuthRequestShown = (eventID) => writeReady(options["ready-file"], { eventID });
      if (command === "request") {
        await device().requestAuthFromNonTrusted(options.event || "LOGIN", cb.onSuccess, cb.onError, {}, true);
      } else {
        const cotter = new phone.sdk.Cotter(apiKey);
        await cotter.signInWithDevice(required(options, "identifier"), cb.onSuccess, cb.onError);
      }
      result = await cb.done;
      if (phone.authRequest) {
        clearInterval(phone.authRequest.timer);
        result.eventID = phone.authRequest.eventID;
        result.polls = phone.authRequest.polls.map((p) => ({
          response: clone(p.response),
          error: p.error === undefined ? undefined : errorValue(p.error),
        }));
      }
      break;
    }
    case "respond": {
      const decision = required(options, "decision");
      if (decision !== "approve" && decision !== "reject") {
        throw new Error("--decision must be approve or reject");
      }
      try {
        await device().getNewEvent({});
      } catch (err) {
        result = { outcome: "error", error: errorValue(err) };
        break;
      }
      if (!phone.approveModal) {
        // Not trusted (getNewEvent silently does nothing) or no pending event (null).
        result = { outcome: "no-modal", newEvent: null };
        break;
      }
      const pressed =
        decision === "approve" ? await phone.approveModal.approveEvent() : await phone.approveModal.rejectEvent();
      result = {
        outcome: pressed.modalOutcome === "closed" ? "success" : "error",
        newEvent: clone(phone.approveModal.event),
        response: clone(pressed.response),
        error: pressed.error === undefined ? undefined : errorValue(pressed.error),
      };
      break;
    }
    case "qr": {
      const cb = callbacks(waitLimit);
      phone.onQRShown = (qr) => {
        phone.save(); // the new key pair exists from now on
        writeReady(options["ready-file"], { qr });
      };
      await device().trustThisDevice(cb.onSuccess, cb.onError, {});
      result = await cb.done;
      if (phone.qrShow) {
        clearInterval(phone.qrShow.timer);
        result.qr = phone.qrShow.qrText;
        result.checks = phone.qrShow.checks;
      }
      break;
    }
    case "enrol-other": {
      const td = device();
      await td.scanQRCode({});
      const scanned = await phone.qrScan.submitScannedCode({ data: required(options, "qr") });
      result = {
        outcome: scanned.modalOutcome === "success" ? "success" : "error",
        response: clone(scanned.response),
        error: scanned.error === undefined ? undefined : errorValue(scanned.error),
      };
      break;
    }
    case "refresh": {
      // TokenHandler.getTokensFromRefreshToken: C2 POST /token with the stored refresh token.
      try {
        const handler = new phone.sdk.TokenHandler(apiKey, userID);
        result = { outcome: "success", response: await handler.getTokensFromRefreshToken() };
      } catch (err) {
        result = { outcome: "error", error: errorValue(err) };
      }
      break;
    }
    case "remove": {
      try {
        result = { outcome: "success", response: clone(await device().removeDevice()) };
      } catch (err) {
        result = { outcome: "error", error: errorValue(err) };
      }
      break;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}`);
  }

  await sleep(100); // the SDK does not await storeTokens()/saveItemSecure(); let them land
  phone.save();
  return { command, ...phone.report(result) };
}

run(main);
