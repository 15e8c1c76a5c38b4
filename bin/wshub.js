#!/usr/bin/env node
// Thin launcher: the CLI lives in TypeScript and is compiled to dist/ by `npm run build`
// (run automatically by `npm ci` through the `prepare` script).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
