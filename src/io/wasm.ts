import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { packageRoot } from './package.ts';

/**
 * Running from the TypeScript sources (tests, bench), a module older than its AssemblyScript
 * source, or missing, is compiled first (scripts/build-wasm.mjs, ~2 s): a change to wasm/ never
 * runs against the last build's module. The built package runs the modules it ships.
 */
const fromSource = import.meta.url.endsWith('.ts');

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

const modules = new Map<string, WebAssembly.Module>();

/**
 * The built module dist/wasm/NAME.wasm (compiled from wasm/NAME.ts), compiled once per thread.
 * Liftoff, V8's baseline compiler for WebAssembly, compiles a small module whole in about a
 * millisecond, and its code runs at once.
 */
export function wasmModule(name: string): WebAssembly.Module {
  let m = modules.get(name);
  if (m) return m;
  const file = `${packageRoot}dist/wasm/${name}.wasm`;
  if (fromSource && mtime(file) < mtime(`${packageRoot}wasm/${name}.ts`)) {
    execFileSync(process.execPath, [`${packageRoot}scripts/build-wasm.mjs`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch {
    throw new Error(`${file} is missing: \`npm run build\` compiles it from wasm/${name}.ts`);
  }
  modules.set(name, (m = new WebAssembly.Module(bytes)));
  return m;
}
