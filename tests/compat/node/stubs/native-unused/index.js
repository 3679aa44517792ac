"use strict";
// Empty stand-in: reached only through imports the TrustedDevice code never calls under
// Node (Verify.js's in-app browser, sha256, secure random). Calling anything throws.
function unavailable() {
  throw new Error("native-unused stub: this native module is not available under Node");
}

module.exports = {
  __esModule: true,
  default: { open: unavailable, isAvailable: async () => false },
  sha256: unavailable,
  generateSecureRandom: unavailable,
};
