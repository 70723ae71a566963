// Compiles the WebAssembly parts of the emulator (wasm/*.ts, AssemblyScript) into dist/wasm/:
// the guest's touch draws (wasm/draws.ts, loaded by src/workload/draws.ts). No runtime and no
// allocator (`--runtime stub`): the modules keep their state in globals and one static area.
import { mkdirSync } from 'node:fs';
import asc from 'assemblyscript/asc';

mkdirSync('dist/wasm', { recursive: true });
for (const name of ['draws']) {
  const { error, stderr } = await asc.main([`wasm/${name}.ts`, '--outFile', `dist/wasm/${name}.wasm`, '-O3', '--runtime', 'stub', '--noAssert'], {});
  if (error) {
    console.error(stderr.toString());
    throw new Error(`asc failed on wasm/${name}.ts: ${error.message}`);
  }
}
