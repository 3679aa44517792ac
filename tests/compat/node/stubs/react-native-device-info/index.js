"use strict";
// Stand-in for react-native-device-info (reference/cotter-api.md §5.4, stub 3). The SDK
// sends getManufacturer() as device_type and "<getDeviceId()> <getReadableVersion()>" as
// device_name. `__device` lets the driver give each phone its own values.
const device = { manufacturer: "TestMaker", deviceId: "testdev", readableVersion: "1.0" };

const DeviceInfo = {
  getManufacturer: async () => device.manufacturer,
  getDeviceId: () => device.deviceId,
  getReadableVersion: () => device.readableVersion,
};

module.exports = { __esModule: true, default: DeviceInfo, __device: device };
