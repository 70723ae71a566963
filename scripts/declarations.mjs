// tsc's declarations keep the sources' relative `.ts` specifiers (rewriteRelativeImportExtensions
// rewrites only the emitted JavaScript), so dist/*.d.ts would name TypeScript files the package
// does not ship; older TypeScript and other tools reject them. They name the built `.js` files.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url).pathname;
const relativeTs = /((?:from |import\()\s*['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g;
for (const e of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!e.isFile() || !e.name.endsWith('.d.ts')) continue;
  const file = join(e.parentPath, e.name);
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(relativeTs, '$1.js$2');
  if (fixed !== text) writeFileSync(file, fixed);
}
