#!/usr/bin/env node
// Thin launcher: the CLI lives in TypeScript and is compiled to dist/ by `npm run build`
// (run automatically by `npm ci` through the `prepare` script). For `serve` it also makes
// sure node runs with the daemon's V8 flags, relaunching itself with them when they are
// missing (src/cli/launch.ts says which, why, and how signals and exit codes pass through).
import('../dist/src/cli/launch.js')
  .then(async (launch) => {
    const args = process.argv.slice(2);
    const missing = launch.missingNodeFlags(args);
    if (missing.length > 0) return launch.relaunch(process.argv[1], args, missing);
    launch.followLauncher();
    const cli = await import('../dist/src/cli/main.js');
    return cli.main(args);
  })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
