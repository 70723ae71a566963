// Regenerates the parameter tables of docs/model.md from the schema's metadata
// (test/inputs.test.ts fails until this has been run after a schema change).
import { readFileSync, writeFileSync } from 'node:fs';
import { withFieldTables } from '../src/scenario/field-table.ts';

const path = new URL('../docs/model.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withFieldTables(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'docs/model.md is up to date\n' : 'docs/model.md: parameter tables regenerated\n');
