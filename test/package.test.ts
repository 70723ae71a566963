import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: `npm pack`, the tarball installed into an empty project, used
 * from plain JavaScript, from strict TypeScript and through its installed CLI, with no
 * TypeScript loader anywhere. `npm test` builds dist/ first (pretest).
 */
const repo = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-package-'));
const project = join(dir, 'project');
const bin = join(project, 'node_modules', '.bin', 'postcopy-emu');
let files: string[] = [];
/** The code caches are named for the V8 that made them (dist/io/bundle.js). */
const v8 = process.versions.v8;

const sh = (cmd: string, args: string[], cwd: string) => spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 });

/** A small hybrid run. */
const SMALL_RUN = ['run', '--preset', 'xen-2017-hybrid', '--set', 'memory.pages=4096', '--set', 'memory.outstanding={kind: all}',
  '--set', 'workload.region={start: 0, count: 1024}'];

/** SMALL_RUN through the installed CLI bundle; prints whether V8 rejected each script's code cache. */
const bundleRun = () => sh(process.execPath, ['--input-type=module', '-e', [
  `const { loadCli } = await import(${JSON.stringify(join(project, 'node_modules', 'postcopy-emu', 'dist', 'cli', 'bundle.js'))});`,
  'const { main, scripts } = loadCli();',
  `await main(['node', 'postcopy-emu', ...${JSON.stringify(SMALL_RUN)}], () => {});`,
  'console.log([...scripts].map(([file, s]) => `${file.split("/").at(-1)} ${s.cachedDataRejected}`).join(", "));',
].join('\n')], project);

beforeAll(() => {
  if (!existsSync(join(repo, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  // dist/ is fresh (pretest); --ignore-scripts keeps pack from building it a second time.
  const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' }).trim().split('\n').at(-1)!;
  files = execFileSync('tar', ['tzf', join(dir, tgz)], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const install = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tgz)], project);
  if (install.status !== 0) throw new Error(`npm install of the tarball failed:\n${install.stderr}`);
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('holds the built JS and WebAssembly, its types, README, LICENSE, docs and the shipped traces only', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/library.js');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('dist/cli/bundle.js');
    expect(files).toContain('bin/postcopy-emu.mjs');
    expect(files).toContain('README.md');
    expect(files).toContain('LICENSE');
    expect(files).toContain('docs/model.md');
    expect(files).toContain('traces/hashtable.pctrace');
    const stray = files.filter((f) => /^(src|test|bench|\.ci)\//.test(f) || f.endsWith('.png') || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
    expect(stray).toEqual([]);
    expect(files.filter((f) => f.startsWith('dist/') && !/\.(js|d\.ts|js\.map)$/.test(f)).sort()).toEqual([
      'dist/cli-bundle/commands.cjs', `dist/cli-bundle/commands.cjs.${v8}.cache`, 'dist/cli-bundle/main.cjs', `dist/cli-bundle/main.cjs.${v8}.cache`,
      'dist/library-bundle/index.cjs', `dist/library-bundle/index.cjs.${v8}.cache`, 'dist/wasm/touches.wasm',
    ]);
  });

  it('types whose imports name the built .js files, not TypeScript sources it does not ship', () => {
    const installed = join(project, 'node_modules', 'postcopy-emu');
    const declarations = files.filter((f) => f.endsWith('.d.ts'));
    const imports = declarations.flatMap((f) => [...readFileSync(join(installed, f), 'utf8').matchAll(/(?:from |import\()['"](\.{1,2}\/[^'"]*)['"]/g)].map((m) => m[1]!));
    expect(declarations.length).toBeGreaterThan(50);
    expect(imports).toContain('./emulator.js');
    expect(imports.filter((i) => !i.endsWith('.js'))).toEqual([]);
  });

  it('installs with no TypeScript loader among its dependencies', () => {
    expect(readdirSync(join(project, 'node_modules'))).not.toContain('tsx');
  });
});

describe('the installed package', () => {
  it('is imported from a plain .mjs file', () => {
    writeFileSync(join(project, 'use.mjs'), [
      "import { Emulator, buildReport, presets, ScenarioError } from 'postcopy-emu';",
      "const r = buildReport(new Emulator({ memory: { pages: 1024 }, workload: { kind: 'sequential', vcpus: 1 } }).run());",
      "console.log(JSON.stringify({ status: r.status, total: r.ram.total, presets: presets.size, error: ScenarioError.name }));",
    ].join('\n'));
    const r = sh(process.execPath, ['use.mjs'], project);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ status: 'completed', total: 4_194_304, presets: 31, error: 'ScenarioError' });
  });

  it('an uncaught error of the library prints its message and a short source line, not a line of the bundle', () => {
    // Node shows the source line an uncaught exception was thrown at: a bundle on a few long
    // lines put ~100 KB of code on the terminal.
    writeFileSync(join(project, 'bad.mjs'), "import { Emulator } from 'postcopy-emu';\nnew Emulator({ memory: { pages: 1024 }, ring: { capacity: 0 } });\n");
    const r = sh(process.execPath, ['bad.mjs'], project);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ScenarioError: ring\.capacity: Too small: expected number to be >=1/);
    expect(Math.max(...r.stderr.split('\n').map((l) => l.length))).toBeLessThanOrEqual(200);
  });

  it('type-checks from strict TypeScript (nodenext, noUncheckedIndexedAccess, library checks on)', () => {
    writeFileSync(join(project, 'use.ts'), [
      "import { Emulator, buildReport, type RunReport, type ScenarioInput } from 'postcopy-emu';",
      "const input: ScenarioInput = { memory: { pages: 1024 }, ring: { capacity: 8 } };",
      'const r: RunReport = buildReport(new Emulator(input).run());',
      'const downtime: number = r.downtime;',
      'export { downtime };',
    ].join('\n'));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noUncheckedIndexedAccess: true,
        noEmit: true, skipLibCheck: false, typeRoots: [join(repo, 'node_modules', '@types')], types: ['node'],
      },
      include: ['use.ts'],
    }));
    const r = sh(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs the README\'s JavaScript examples as they are written', () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(3);
    const outputs = blocks.map((code, i) => {
      writeFileSync(join(project, `readme-${i}.mjs`), code);
      const r = sh(process.execPath, [`readme-${i}.mjs`], project);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout;
    });
    expect(outputs[0]!.split('\n').at(-2)).toBe('true []');
    expect(outputs[1]!.trim().split('\n')).toEqual(['active 14 3529867 0', 'converged 119 11106240336 60 completed']);
    expect(outputs[2]).toBe('true ring.capacity ring.capacity: Too small: expected number to be >=1\n');
  });

  it('runs its CLI: --version, and a preset whose trace ships with the package, from another directory', () => {
    expect(sh(bin, ['--version'], dir).stdout).toBe('0.1.0\n');
    const r = sh(bin, ['run', '--preset', 'trace-hashtable', '--json', '-'], dir);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { status: string; ram: { total: number } };
    expect(report.status).toBe('completed');
    expect(report.ram.total).toBe(4117 * 4096);
  });

  it('loads its CLI bundle with the code caches the build made', () => {
    const r = bundleRun();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('main.cjs false, commands.cjs false\n');
  });

  it('a node the build did not make caches for writes its own as a command ends, and uses it', () => {
    const folder = join(project, 'node_modules', 'postcopy-emu', 'dist', 'cli-bundle');
    const caches = () => readdirSync(folder).filter((f) => !f.endsWith('.cjs')).sort();
    for (const f of caches()) rmSync(join(folder, f));
    // `presets` reads main.cjs only: its cache appears, commands.cjs's does not yet.
    expect(sh(bin, ['presets'], dir).status).toBe(0);
    expect(caches()).toEqual([`main.cjs.${v8}.cache`]);
    expect(sh(bin, SMALL_RUN, dir).status).toBe(0);
    expect(caches()).toEqual([`commands.cjs.${v8}.cache`, `main.cjs.${v8}.cache`]);
    expect(bundleRun().stdout).toBe('main.cjs false, commands.cjs false\n');
  });

  it('runs every kind of command from the bundle: workers, the report (vega), inputs, traces', () => {
    writeFileSync(join(dir, 'sweep.yaml'), [
      'base: { preset: xen-2017-hybrid, set: { memory.pages: 4096, memory.outstanding: { kind: all }, workload.region: { start: 0, count: 1024 } } }',
      'axes: { ring.capacity: [1, 64] }',
    ].join('\n'));
    const sweep = sh(bin, ['sweep', 'sweep.yaml', '-o', 'out', '-j', '2'], dir);
    expect(sweep.stdout).toBe('2 runs (2 configurations × 1 replications) in out: 2 ok, 0 failed (0 resumed from runs.jsonl, 2 run now)\n');
    expect(sh(bin, ['report', 'out'], dir).stdout).toBe('out/report.html\n');
    expect(readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.vl.json')).length).toBeGreaterThanOrEqual(3);
    expect(sh(bin, ['soak', '--seeds', '20', '-j', '2'], dir).stdout).toMatch(/^20 seeds, 0 failed, wall [\d.]+ s\n$/);
    expect(sh(bin, ['fields', 'ring'], dir).stdout).toMatch(/^field\s+type\s+default\s+unit\s+allowed\s+source\nring\.capacity\s+integer\s+8\s+slots/);
    expect(JSON.parse(sh(bin, ['schema'], dir).stdout).title).toBe('postcopy-emu scenario');
    writeFileSync(join(dir, 't.csv'), 'time_ns,gfn,op\n0,1,r\n10,2,w\n');
    expect(sh(bin, ['trace', 'import', 't.csv', '-o', 't.pctrace', '-f', 'csv'], dir).status).toBe(0);
    // live: a second process of the installed CLI and a vCPU worker thread from the built dist/.
    const live = sh(bin, ['live', '--preset', 'xen-2017-pure', '--set', 'memory.pages=256', '--set', 'mapper.mapping={kind: none}',
      '--set', 'workload={kind: random, vcpus: 1, region: {start: 0, count: 256}}'], dir);
    expect(live.stdout).toMatch(/\nlive: 256 pages verified, 0 mismatches; /);
  });

  it('ends quietly with exit 0 when the reader closes the pipe early', () => {
    // Megabytes of JSON into `head -c 100`: the CLI's later writes meet a closed pipe (EPIPE).
    const r = sh('bash', ['-c', `set -o pipefail; "${bin}" run --preset xen-2017-hybrid --timeline 1 --json - | head -c 100 >/dev/null`], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
