import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package's root directory: two levels above this module, in src/ and in dist/ alike. */
export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as { version: string }).version;
}
