"use strict";
// Stand-in for `react-native` (reference/cotter-api.md §5.4, stub 1). TrustedDevice only
// needs NativeModules.RNRandomBytes (react-native-randombytes' native module), which
// answers asynchronously with base64 random bytes. Verify.js (pulled in through
// TokenHandler -> User -> Cotter) imports Linking and Alert but never calls them here.
const crypto = require("crypto");

const RNRandomBytes = {
  randomBytes(length, callback) {
    const bytes = crypto.randomBytes(length).toString("base64");
    setImmediate(() => callback(null, bytes));
  },
};

function unavailable(name) {
  return () => {
    throw new Error(`react-native stub: ${name} is not available under Node`);
  };
}

module.exports = {
  __esModule: true,
  NativeModules: { RNRandomBytes },
  Platform: { OS: "ios", select: (choices) => choices.ios ?? choices.default },
  Linking: {
    openURL: unavailable("Linking.openURL"),
    addEventListener: unavailable("Linking.addEventListener"),
    removeEventListener: () => {},
  },
  Alert: { alert: unavailable("Alert.alert") },
  StyleSheet: { create: (styles) => styles },
  Dimensions: { get: () => ({ width: 375, height: 812 }) },
};
