#!/usr/bin/env node
"use strict";
// Cotter's server-side JavaScript packages against a live server (reference §5.2, §3.7):
//
//   node drivers/cotter-node.js validate --url http://127.0.0.1:PORT --kid KID --token T [--token T2 ...]
//     cotter-node@0.1.3 CotterValidateJWT(token) for each token, with Constants.BaseURL =
//     <url>/api/v0 (it fetches <BaseURL>/token/jwks once and caches it) and Constants.JWTKID =
//     KID (the SDK only looks the key up by that kid). Prints {"results": [{"valid": bool}...]}.
//   node drivers/cotter-node.js decode [--access-token T] [--id-token T]
//     cotter-token-js@0.1.11 CotterAccessToken / CotterIDToken (decode only, no network).
//
// --url defaults to $AUTHDEVICE_URL.

const { describe, parseArgs, required, run } = require("./common");

function list(value) {
  if (value === undefined) {
    return [];
  }
  return [].concat(value);
}

async function validate(options) {
  const { CotterValidateJWT, Constants } = require("cotter-node");
  const url = required(options, "url", "AUTHDEVICE_URL").replace(/\/+$/, "");
  Constants.BaseURL = `${url}/api/v0`;
  Constants.JWTKID = required(options, "kid");
  const results = [];
  for (const token of list(options.token)) {
    try {
      results.push({ valid: await CotterValidateJWT(token) });
    } catch (err) {
      // e.g. TypeError reading `.pem` of undefined when no JWKS key has Constants.JWTKID
      results.push({ valid: false, error: describe(err) });
    }
  }
  return { baseURL: Constants.BaseURL, kid: Constants.JWTKID, results };
}

function decode(options) {
  const { CotterAccessToken, CotterIDToken } = require("cotter-token-js");
  const out = {};
  if (options["access-token"]) {
    const access = new CotterAccessToken(options["access-token"]);
    out.access = {
      payload: access.payload,
      id: access.getID(),
      clientUserID: access.getClientUserID(),
      identifier: access.getIdentifier(),
      authMethod: access.getAuthMethod(),
      scope: access.getScope(),
      expiration: access.getExpiration(),
      audience: access.getAudience(),
    };
  }
  if (options["id-token"]) {
    const id = new CotterIDToken(options["id-token"]);
    out.id = {
      payload: id.payload,
      id: id.getID(),
      clientUserID: id.getClientUserID(),
      identifier: id.getIdentifier(),
      authTime: id.getAuthTime(),
      expiration: id.getExpiration(),
      audience: id.getAudience(),
    };
  }
  return out;
}

async function main() {
  const { positional, options } = parseArgs(process.argv.slice(2));
  switch (positional[0]) {
    case "validate":
      return { command: "validate", ...(await validate(options)) };
    case "decode":
      return { command: "decode", ...decode(options) };
    default:
      throw new Error(`unknown command ${JSON.stringify(positional[0])}`);
  }
}

run(main);
