"use strict";
// In-memory stand-in for rn-secure-storage 2.x (reference/cotter-api.md §5.4, stub 2).
// `get` REJECTS for a missing key, like the real module: TrustedDevice detects "no key
// pair yet" only through that exception. Every bundle load has its own map, so two loads
// of the bundle are two phones. The driver reads/writes `__store` to persist a phone.
const store = new Map();

const ACCESSIBLE = {
  WHEN_UNLOCKED: "AccessibleWhenUnlocked",
  AFTER_FIRST_UNLOCK: "AccessibleAfterFirstUnlock",
  ALWAYS: "AccessibleAlways",
  WHEN_PASSCODE_SET_THIS_DEVICE_ONLY: "AccessibleWhenPasscodeSetThisDeviceOnly",
  WHEN_UNLOCKED_THIS_DEVICE_ONLY: "AccessibleWhenUnlockedThisDeviceOnly",
  AFTER_FIRST_UNLOCK_THIS_DEVICE_ONLY: "AccessibleAfterFirstUnlockThisDeviceOnly",
  ALWAYS_THIS_DEVICE_ONLY: "AccessibleAlwaysThisDeviceOnly",
};

const RNSecureStorage = {
  async set(key, value, _options) {
    if (typeof value !== "string") {
      throw new Error(`rn-secure-storage stub: value for ${key} is not a string`);
    }
    store.set(key, value);
    return "Key stored successfully";
  },
  async get(key) {
    if (!store.has(key)) {
      throw new Error("key does not present");
    }
    return store.get(key);
  },
  async exists(key) {
    return store.has(key);
  },
  async remove(key) {
    if (!store.has(key)) {
      throw new Error("key does not present");
    }
    store.delete(key);
    return "Key removed successfully";
  },
};

module.exports = { __esModule: true, default: RNSecureStorage, ACCESSIBLE, __store: store };
