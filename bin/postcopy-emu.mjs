#!/usr/bin/env node
// The postcopy-emu command: the built CLI bundle with its code caches (dist/cli/bundle.js; made by
// `npm run build`, which `npm install` runs in a checkout).
// A reader that closes the pipe early (`| head`) ends the command quietly, as Unix tools do.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { loadCli } = await import('../dist/cli/bundle.js');
process.exitCode = await loadCli().main(process.argv);
