"use strict";
// What react-native-cotter@0.3.6's src/TrustedDevice/wrapper.js does once its modals are on
// screen, minus the pixels. The real component assigns these four functions onto
// CotterAuthModal in componentDidMount; here installModals() does, and the behaviour below
// follows the component's methods line for line (names kept: startTimerAuthRequest,
// getEvent, approveEvent, rejectEvent, startTimerQRShow, submitScannedCode...).
// Only the timings are parameters (the tests shorten the 60 s / 180 s deadlines).

const WRAPPER = {
  AUTH_REQUEST_DEADLINE: 60, // s
  AUTH_REQUEST_POLL: 1, // s (setInterval 1000)
  QR_SHOW_DEADLINE: 180, // s
  QR_SHOW_SECONDS_TO_RETRY: 3, // s
  RESULT_DURATION: 3, // s (AUTH_REQUEST_ERROR_DURATION / QR_SHOW_RESULT_DURATION)
};

function installModals(phone, timing = {}) {
  const t = { ...WRAPPER, ...timing };
  const modal = phone.sdk.CotterAuthModal;
  const log = phone.modalLog;

  // ---- Auth request (the non-trusted device waits for approval) ----
  modal.showAuthRequest = (authReqText, eventID, trustDev, onSuccess, onError, getOAuthToken = true) => {
    log.push({ modal: "showAuthRequest", eventID, getOAuthToken });
    const state = { eventID, getOAuthToken, timer: null, polls: [] };
    phone.authRequest = state;
    if (phone.onAuthRequestShown) {
      phone.onAuthRequestShown(eventID);
    }
    const errorAndCloseAuthReq = (errMsg, err) => {
      clearInterval(state.timer);
      log.push({ modal: "hideAuthRequest", error: errMsg });
      onError(errMsg, err);
    };
    const getEvent = () => {
      const poll = { at: Date.now() };
      state.polls.push(poll);
      trustDev.requests
        .getEvent(state.eventID, state.getOAuthToken)
        .then((resp) => {
          poll.response = resp;
          if (resp.approved) {
            onSuccess(resp);
            clearInterval(state.timer);
            log.push({ modal: "hideAuthRequest" });
            if (resp && resp.oauth_token) {
              trustDev.tokenHandler.storeTokens(resp.oauth_token);
            }
          }
        })
        .catch((err) => {
          poll.error = err;
          errorAndCloseAuthReq("Something went wrong", err);
        });
    };
    const deadline = Date.now() + (t.AUTH_REQUEST_DEADLINE + 1) * 1000;
    state.timer = setInterval(() => {
      const left = deadline - Date.now();
      getEvent();
      if (left < 0) {
        clearInterval(state.timer);
        setTimeout(() => errorAndCloseAuthReq("Request Timeout", null), t.RESULT_DURATION * 1000);
      }
    }, t.AUTH_REQUEST_POLL * 1000);
  };

  // ---- Auth approve (the trusted device is asked "Are you trying to sign in?") ----
  modal.showAuthApprove = (authApproveText, trustDev, event) => {
    log.push({ modal: "showAuthApprove", eventID: event && event.ID });
    phone.approveModal = {
      event,
      // "Yes" button
      approveEvent: async () => {
        try {
          const resp = await trustDev.approveEvent(event, true);
          const ok = resp.approved == true; // eslint-disable-line eqeqeq
          log.push({ modal: ok ? "hideAuthApprove" : "error", button: "yes" });
          return { response: resp, modalOutcome: ok ? "closed" : "error" };
        } catch (err) {
          log.push({ modal: "error", button: "yes" });
          return { error: err, modalOutcome: "error" };
        }
      },
      // "No, it's not me" button (closeAndRejectAuthApprove -> rejectEvent)
      rejectEvent: async () => {
        try {
          const resp = await trustDev.approveEvent(event, false);
          const ok = resp.approved == false; // eslint-disable-line eqeqeq
          log.push({ modal: ok ? "hideAuthApprove" : "error", button: "no" });
          return { response: resp, modalOutcome: ok ? "closed" : "error" };
        } catch (err) {
          log.push({ modal: "error", button: "no" });
          return { error: err, modalOutcome: "error" };
        }
      },
    };
  };

  // ---- Show QR (the new device shows its key and waits to become trusted) ----
  modal.showQRCode = (showQRText, trustDev, qrText, onSuccess, onError) => {
    log.push({ modal: "showQRCode", qrText });
    const state = { qrText, timer: null, checks: 0 };
    phone.qrShow = state;
    if (phone.onQRShown) {
      phone.onQRShown(qrText);
    }
    const hideQRCode = () => {
      clearInterval(state.timer);
      log.push({ modal: "hideQRCode" });
    };
    const onEnrollNewDeviceSuccess = () => {
      clearInterval(state.timer);
      setTimeout(() => {
        hideQRCode();
        onSuccess();
      }, t.RESULT_DURATION * 1000);
    };
    const errorAndCloseQRShow = (errMsg, err) => {
      setTimeout(() => {
        hideQRCode();
        onError(errMsg, err);
      }, t.RESULT_DURATION * 1000);
    };
    const trustedDeviceEnrolled = async () => {
      try {
        state.checks += 1;
        const trusted = await trustDev.trustedDeviceEnrolled();
        if (trusted && !state.done) {
          state.done = true;
          onEnrollNewDeviceSuccess();
        }
      } catch (err) {
        log.push({ modal: "showQRCode", error: String(err) });
      }
    };
    const deadline = Date.now() + (t.QR_SHOW_DEADLINE + 1) * 1000;
    state.timer = setInterval(() => {
      const left = deadline - Date.now();
      trustedDeviceEnrolled();
      if (left < 0) {
        clearInterval(state.timer);
        errorAndCloseQRShow("Request Timeout", null);
      }
    }, t.QR_SHOW_SECONDS_TO_RETRY * 1000);
  };

  // ---- Scan QR (the trusted device's camera reads the new device's QR) ----
  modal.showQRScan = (scanQRText, trustDev) => {
    log.push({ modal: "showQRScan" });
    let scanned = false;
    phone.qrScan = {
      // RNCamera's onBarCodeRead -> submitScannedCode({data})
      submitScannedCode: async (e) => {
        if (scanned) {
          return { modalOutcome: "ignored" };
        }
        scanned = true;
        try {
          const resp = await trustDev.enrollOtherDevice(e.data);
          const ok = resp.approved === true;
          log.push({ modal: ok ? "onSuccessQRScanned" : "onErrorQRScanned" });
          return { response: resp, modalOutcome: ok ? "success" : "error" };
        } catch (err) {
          log.push({ modal: "onErrorQRScanned" });
          return { error: err, modalOutcome: "error" };
        }
      },
    };
  };
}

module.exports = { WRAPPER, installModals };
