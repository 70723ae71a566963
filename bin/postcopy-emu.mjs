#!/usr/bin/env node
// The postcopy-emu command: the built CLI bundle (dist/cli-bundle/, made by `npm run build`, which
// `npm install` runs in a checkout).
// A reader that closes the pipe early (`| head`) ends the command quietly, as Unix tools do.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { main } = await import('../dist/cli-bundle/main.js');
process.exitCode = await main(process.argv);
