/** The CLI from the package's bundle (io/bundle.ts), as bin/postcopy-emu.mjs runs it. */
import type * as Vm from 'node:vm';
import { loadBundle } from '../io/bundle.ts';
import type { main } from './main.ts';

/** The bundle's main(), and its scripts so far (the build makes their code caches). */
export function loadCli(): { main: typeof main; scripts: Map<string, Vm.Script> } {
  const bundle = loadBundle();
  return { main: (bundle.require('main.js') as { main: typeof main }).main, scripts: bundle.scripts };
}
