// Bundle react-native-cotter@0.3.6's real TrustedDevice code for Node (reference/cotter-api.md
// §5.4): esbuild, platform node, everything inlined so that each `require` of a fresh copy of
// the bundle is one phone with its own secure storage, token handler and axios.
//
// Native modules come from ./stubs (installed through package.json `overrides`, so npm never
// downloads react-native or the camera/modal/SVG packages); the JSX modal wrapper is swapped
// for stubs/TrustedDevice/wrapper.js by the plugin below. Nothing else of the SDK is changed.
//
//   node build.mjs            -> build/rn-trusted-device.cjs (written atomically)
import { build } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const sdkRoot = path.dirname(require.resolve("react-native-cotter/package.json"));
const sdkTrustedDevice = path.join(sdkRoot, "src", "TrustedDevice");
const wrapperStub = path.join(here, "stubs", "TrustedDevice", "wrapper.js");
const outFile = path.join(here, "build", "rn-trusted-device.cjs");

const swapNativeParts = {
  name: "swap-native-parts",
  setup(b) {
    // TrustedDevice/index.js imports './wrapper' (JSX, camera, modals): use the stub.
    b.onResolve({ filter: /(^|\/)wrapper$/ }, (args) => {
      const target = path.resolve(args.resolveDir, args.path);
      if (target === path.join(sdkTrustedDevice, "wrapper")) {
        return { path: wrapperStub };
      }
      return undefined;
    });
    // The entry re-exports the axios instance the SDK's Requests module uses (so the driver
    // can log and stub its traffic); resolve it from there, not from the entry.
    b.onResolve({ filter: /^sdk-axios$/ }, (args) =>
      b.resolve("axios", {
        resolveDir: path.join(sdkRoot, "src", "Requests"),
        kind: args.kind,
      }),
    );
  },
};

const result = await build({
  entryPoints: [path.join(here, "src", "rn-entry.js")],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  write: false,
  outfile: outFile,
  sourcemap: "inline",
  logLevel: "warning",
  loader: { ".js": "jsx", ".png": "empty" },
  // axios 0.19 picks its Node (http) adapter at runtime; keep Node's built-ins external.
  plugins: [swapNativeParts],
});

mkdirSync(path.dirname(outFile), { recursive: true });
const tmp = `${outFile}.${process.pid}.tmp`;
writeFileSync(tmp, result.outputFiles[0].contents);
renameSync(tmp, outFile);
process.stdout.write(`${JSON.stringify({ bundle: outFile })}\n`);
