/* authdevice: this browser as a trusted device. No dependencies, no inline script, no HTML
 * written from script (the pages run under script-src 'self' and Trusted Types).
 *
 * The key: WebCrypto ECDSA P-256, generated with extractable=false and kept (as a
 * CryptoKeyPair) in IndexedDB; only the public key (SPKI, base64) leaves the browser. The
 * device's public name ("handle") is the hex SHA-256 of that base64 string.
 * Signed bytes (flows/native.py signed_message):
 *   "authdevice/v1" NUL purpose NUL origin NUL challenge NUL event_id NUL decision NUL extra
 * Signatures are raw R||S, base64url (what crypto.subtle.sign returns for ECDSA).
 *
 * Each page says what it needs with data-ad-* attributes; the server supplies the URLs
 * and the (translated) messages.
 */
(function () {
  "use strict";

  var DB_NAME = "authdevice";
  var STORE = "keys";
  var RECORD = "this-browser";
  var enc = new TextEncoder();

  function $(selector, root) { return (root || document).querySelector(selector); }
  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function supported() {
    return !!(window.crypto && crypto.subtle && window.indexedDB && window.fetch);
  }

  // -- the key in IndexedDB -------------------------------------------------------------

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var request = action(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(request.result); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function loadKey() {
    if (!supported()) return Promise.resolve(null);
    return withStore("readonly", function (s) { return s.get(RECORD); })
      .then(function (record) { return record && record.keyPair && record.handle ? record : null; })
      .catch(function () { return null; });
  }
  function saveKey(record) { return withStore("readwrite", function (s) { return s.put(record, RECORD); }); }
  function forgetKey() { return withStore("readwrite", function (s) { return s.delete(RECORD); }); }

  // -- crypto ---------------------------------------------------------------------------

  function b64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }
  function b64url(buffer) {
    return b64(buffer).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  async function sha256hex(text) {
    var digest = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(text)));
    return Array.prototype.map.call(digest, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  async function newKey() {
    var pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    var publicKey = b64(await crypto.subtle.exportKey("spki", pair.publicKey));
    return { keyPair: pair, publicKey: publicKey, handle: await sha256hex(publicKey), confirmed: false };
  }
  function message(origin, purpose, challenge, eventId, decision, extra) {
    return enc.encode(["authdevice/v1", purpose, origin, challenge, eventId || "", decision || "", extra || ""].join("\0"));
  }
  async function sign(key, bytes) {
    return b64url(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.keyPair.privateKey, bytes));
  }

  // -- talking to the server ------------------------------------------------------------

  function csrfToken() {
    var input = $("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  async function post(url, body, failed) {
    var response, data = {};
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body || {})
      });
      data = await response.json();
    } catch (e) {
      if (!response) throw Object.assign(new Error(failed), { code: "network" });
    }
    if (!response.ok) {
      throw Object.assign(new Error(data.message || failed), { code: data.error || "http_" + response.status });
    }
    return data;
  }

  // -- small UI helpers -----------------------------------------------------------------

  function say(element, text, isError) {
    if (!element) return;
    element.textContent = text || "";
    element.hidden = !text;
    element.classList.toggle("ad-alert-error", !!isError);
    element.classList.toggle("ad-alert-info", !isError);
  }
  function busy(root, on) {
    all("button, input", root).forEach(function (el) { el.disabled = on; });
    root.setAttribute("aria-busy", on ? "true" : "false");
  }
  function reveal(selector, show, root) {
    all(selector, root).forEach(function (el) { el.hidden = !show; });
  }
  function known(root) {
    var holder = root.closest("[data-devices]") || $("[data-devices]");
    return holder ? holder.getAttribute("data-devices").split(" ") : [];
  }

  // -- "this browser" on the device list and the approval page -------------------------

  function markThisDevice(key) {
    all("[data-ad-fingerprint]").forEach(function (row) {
      var mine = !!key && row.getAttribute("data-ad-fingerprint") === key.handle;
      reveal("[data-ad-this]", mine, row);
      row.classList.toggle("ad-device-this", mine);
    });
  }

  // -- make this browser a trusted device (device management page) ----------------------

  function setupEnrol(form, key) {
    var status = $("[data-ad-status]", form);
    var trusted = !!key && known(form).indexOf(key.handle) >= 0;
    reveal("[data-ad-when-trusted]", trusted);
    reveal("[data-ad-when-untrusted]", !trusted);
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var failed = form.dataset.msgFailed;
      busy(form, true);
      say(status, "");
      try {
        var fresh = await newKey();
        var challenge = await post(form.dataset.challengeUrl, {}, failed);
        var signature = await sign(fresh, message(challenge.origin, "enrol", challenge.challenge, "", "", fresh.handle));
        var done = await post(form.dataset.enrolUrl, {
          public_key: fresh.publicKey, challenge: challenge.challenge, signature: signature,
          name: form.elements.name ? form.elements.name.value : ""
        }, failed);
        fresh.confirmed = true;
        await saveKey(fresh);
        window.location.assign(done.redirect);
      } catch (e) {
        say(status, e.message || failed, true);
        reveal("[data-ad-reauth]", e.code === "reauth_required", form);
        busy(form, false);
      }
    });
  }

  // -- sign in with this device (sign-in page) ------------------------------------------

  function setupDeviceSignin(section, key) {
    if (!key) return;
    var button = $("button", section);
    var status = $("[data-ad-status]", section);
    section.hidden = false;
    button.addEventListener("click", async function () {
      var failed = section.dataset.msgFailed;
      busy(section, true);
      say(status, "");
      try {
        var challenge = await post(section.dataset.challengeUrl, { handle: key.handle }, failed);
        var signature = await sign(key, message(challenge.origin, "login", challenge.challenge));
        var done = await post(section.dataset.loginUrl, {
          handle: key.handle, challenge: challenge.challenge, signature: signature,
          next: section.dataset.next || ""
        }, failed);
        if (!key.confirmed) { key.confirmed = true; await saveKey(key); }
        window.location.assign(done.redirect);
      } catch (e) {
        busy(section, false);
        if (e.code === "unknown_device" && key.confirmed) {
          // Removed or revoked: the key is of no use any more.
          await forgetKey().catch(function () {});
          button.hidden = true;
        }
        say(status, e.code === "unknown_device" && !key.confirmed ? section.dataset.msgUnconfirmed : e.message, true);
      }
    });
  }

  // -- approve or reject on this browser (approval page) --------------------------------

  function setupApprovals(page, key) {
    var trusted = !!key && known(page).indexOf(key.handle) >= 0;
    reveal("[data-ad-when-untrusted]", !trusted, page);
    if (!trusted) return;
    all("form[data-ad-approval]", page).forEach(function (form) {
      all("button, input", form).forEach(function (el) { el.disabled = false; });
      var status = $("[data-ad-status]", form);
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        var decision = event.submitter && event.submitter.value === "reject" ? "reject" : "approve";
        var input = form.elements.match_code;
        var failed = page.dataset.msgFailed;
        busy(form, true);
        say(status, "");
        try {
          var challenge = await post(page.dataset.challengeUrl, { handle: key.handle, event: form.dataset.event }, failed);
          var signature = await sign(key, message(challenge.origin, "approve", challenge.challenge, challenge.event, decision));
          var done = await post(page.dataset.decideUrl, {
            handle: key.handle, event: form.dataset.event, challenge: challenge.challenge,
            signature: signature, decision: decision, match_code: input ? input.value.trim() : ""
          }, failed);
          say(status, done.message, false);
          form.classList.add("ad-decided");
        } catch (e) {
          say(status, e.message, true);
          if (e.code === "wrong_number" || e.code === "network" || e.code === "challenge_used") {
            busy(form, false);
            if (input) { input.value = ""; input.focus(); }
          } else {
            form.classList.add("ad-decided");
          }
        }
      });
    });
  }

  // -- the browser waiting for approval (sign-in) ---------------------------------------

  function setupWaiting(page) {
    var done = false, source = null;
    var finish = $("form[data-ad-finish]", page);
    function show(status) {
      all("[data-ad-when]", page).forEach(function (el) {
        el.hidden = el.getAttribute("data-ad-when").split(" ").indexOf(status) < 0;
      });
    }
    function handle(status) {
      if (done || !status) return;
      show(status);
      if (status === "approved" || status === "access_denied" || status === "expired_token") {
        done = true;
        if (source) source.close();
        if (status === "approved") finish.submit();
      }
    }
    async function longPoll() {
      var failures = 0;
      while (!done) {
        var started = Date.now();
        try {
          var response = await fetch(page.dataset.statusUrl + "&wait=25", { credentials: "same-origin", cache: "no-store" });
          if (response.status === 404) { handle("expired_token"); break; }
          handle((await response.json()).status);
          failures = 0;
          if (Date.now() - started < 1000) await sleep(2000); // a server that does not wait
        } catch (e) {
          failures += 1;
          await sleep(Math.min(30000, 1000 * Math.pow(2, failures)));
        }
      }
    }
    if (page.dataset.state !== "authorization_pending") return;
    if (window.EventSource) {
      source = new EventSource(page.dataset.eventsUrl);
      source.addEventListener("status", function (event) {
        try { handle(JSON.parse(event.data).status); } catch (e) { /* ignore a bad frame */ }
      });
      source.onerror = function () {
        source.close();
        if (!done) longPoll();
      };
    } else {
      longPoll();
    }
  }

  // -- adding a device by QR code: the initiating page waits for the new device ----------

  function setupBinding(page) {
    async function check() {
      try {
        var response = await fetch(page.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" });
        var data = await response.json();
        if (data.state && data.state !== "waiting") { window.location.assign(page.dataset.nextUrl); return; }
      } catch (e) { /* try again */ }
      setTimeout(check, 1500);
    }
    setTimeout(check, 1500);
  }

  // -- the new device: create a key and redeem the binding code --------------------------

  function setupBind(form, key) {
    var status = $("[data-ad-status]", form);
    reveal("[data-ad-has-key]", !!key);
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var failed = form.dataset.msgFailed;
      busy(form, true);
      say(status, "");
      try {
        var fresh = await newKey();
        var signature = await sign(fresh, message(form.dataset.origin, "bind", form.dataset.code, "", "", fresh.handle));
        var done = await post(form.dataset.redeemUrl, {
          public_key: fresh.publicKey, signature: signature,
          name: form.elements.name ? form.elements.name.value : ""
        }, failed);
        await saveKey(fresh); // unconfirmed until the other device confirms
        $("[data-ad-comparison]").textContent = done.comparison;
        form.hidden = true;
        reveal("[data-ad-redeemed]", true);
        var heading = $("[data-ad-redeemed] h2, [data-ad-redeemed] [tabindex]");
        if (heading) heading.focus();
      } catch (e) {
        say(status, e.message || failed, true);
        busy(form, false);
      }
    });
  }

  // -- start ------------------------------------------------------------------------------

  async function start() {
    var unsupported = !supported();
    reveal("[data-ad-unsupported]", unsupported);
    var key = await loadKey();
    markThisDevice(key);
    var section = $("[data-ad-device-signin]");
    if (section && !unsupported) setupDeviceSignin(section, key);
    var enrol = $("form[data-ad-enrol]");
    if (enrol && !unsupported) setupEnrol(enrol, key);
    var approvalsPage = $("[data-ad-approvals]");
    if (approvalsPage && !unsupported) setupApprovals(approvalsPage, key);
    var waiting = $("[data-ad-wait]");
    if (waiting) setupWaiting(waiting);
    var binding = $("[data-ad-binding]");
    if (binding) setupBinding(binding);
    var bind = $("form[data-ad-bind]");
    if (bind && !unsupported) setupBind(bind, key);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
