// Compiles the WebAssembly parts of the emulator (wasm/*.ts, AssemblyScript) into dist/wasm/:
// the guest's touches (wasm/touches.ts, instantiated by src/memory/space.ts). No runtime and no
// allocator (`--runtime stub`): JavaScript places the arrays in the memory it gives them.
// Each file is written whole or not at all (a temporary file, renamed): src/io/wasm.ts runs this
// from the sources when a module is older than its source, and test files do so side by side.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

// asc takes paths relative to its base directory: the package's root.
process.chdir(join(dirname(fileURLToPath(import.meta.url)), '..'));
mkdirSync('dist/wasm', { recursive: true });
for (const name of ['touches']) {
  // The memory is the run's (src/memory/space.ts): imported, and shared, so that growing it
  // leaves JavaScript's views of it valid (a growing ordinary memory detaches them).
  const { error, stderr } = await asc.main([`wasm/${name}.ts`, '--outFile', `dist/wasm/${name}.wasm`, '-O3', '--runtime', 'stub', '--noAssert',
    '--importMemory', '--sharedMemory', '--enable', 'threads', '--initialMemory', '1', '--maximumMemory', '65536'], {
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
