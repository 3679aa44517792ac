// Stand-in for react-native-cotter/src/TrustedDevice/wrapper.js (reference §5.4, stub 4):
// the real file is JSX (modals, camera, QR rendering). Its componentDidMount assigns
// showAuthRequest/showAuthApprove/showQRCode/showQRScan onto this object; under Node the
// driver assigns them instead and emulates what the modals do (driver/rn_modals.js).
export const CotterAuthModal = {};

export default function connectCotterWrapper(WrappedComponent) {
  return WrappedComponent;
}
