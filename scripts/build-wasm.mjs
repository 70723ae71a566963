// Compiles the WebAssembly parts of the emulator (wasm/*.ts, AssemblyScript) into dist/wasm/:
// the guest's touch draws (wasm/draws.ts, loaded by src/workload/draws.ts). No runtime and no
// allocator (`--runtime stub`): the modules keep their state in globals and one static area.
// Each file is written whole or not at all (a temporary file, renamed): src/io/wasm.ts runs this
// from the sources when a module is older than its source, and test files do so side by side.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

// asc takes paths relative to its base directory: the package's root.
process.chdir(join(dirname(fileURLToPath(import.meta.url)), '..'));
mkdirSync('dist/wasm', { recursive: true });
for (const name of ['draws']) {
  const { error, stderr } = await asc.main([`wasm/${name}.ts`, '--outFile', `dist/wasm/${name}.wasm`, '-O3', '--runtime', 'stub', '--noAssert'], {
    writeFile(file, contents, baseDir) {
      const path = join(baseDir, file), tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, contents);
      renameSync(tmp, path);
    },
  });
  if (error) {
    console.error(stderr.toString());
    throw new Error(`asc failed on wasm/${name}.ts: ${error.message}`);
  }
}
