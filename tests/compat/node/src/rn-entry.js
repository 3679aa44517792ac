// What one "phone" exposes to the driver: the SDK's real classes plus handles on the stubs.
import TrustedDevice from "react-native-cotter/src/TrustedDevice";
import Constants from "react-native-cotter/src/Constants";
import Requests from "react-native-cotter/src/Requests";
import Cotter from "react-native-cotter/src/Cotter";
import TokenHandler from "react-native-cotter/src/TokenHandler";
import UserHandler from "react-native-cotter/src/User/handler";
// The same module the SDK gets for "./wrapper" (see build.mjs).
import { CotterAuthModal } from "../stubs/TrustedDevice/wrapper.js";
import { __store as secureStore } from "rn-secure-storage";
import { __device as deviceInfo } from "react-native-device-info";
import { CotterAccessToken, CotterIDToken } from "cotter-token-js";
import axios from "sdk-axios";

export {
  TrustedDevice,
  Constants,
  Requests,
  Cotter,
  TokenHandler,
  UserHandler,
  CotterAuthModal,
  secureStore,
  deviceInfo,
  CotterAccessToken,
  CotterIDToken,
  axios,
};
