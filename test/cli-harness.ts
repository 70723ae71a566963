import { afterEach, beforeEach, vi } from 'vitest';
import { main } from '../src/cli/main.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs the CLI in-process with stderr captured. Call it at the top of a file or describe block:
 * it installs the capture around every test there and returns the runner.
 */
export function cliHarness(): (...args: string[]) => Promise<CliResult> {
  let stderr: string[] = [];
  beforeEach(() => {
    stderr = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return async (...args) => {
    let out = '';
    const from = stderr.length; // only what this call wrote
    const code = await main(['node', 'postcopy-emu', ...args], (s) => { out += s; });
    return { code, out, err: stderr.slice(from).join('') };
  };
}
