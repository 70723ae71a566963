import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WorkerPool } from '../src/workers/pool.ts';
import { cliHarness } from './cli-harness.ts';
import { signalMidSweep } from './sweep-signal.ts';

/** Refusals that keep a sweep directory sound: resume only the same sweep, bad records named. */
const cli = cliHarness();
const tmp = () => mkdtempSync(join(tmpdir(), 'pce-sweep-safety-'));
const root = join(import.meta.dirname, '..');

/** 2 configurations × 2 replications of a 16 MiB storm: a few ms a run. */
const SWEEP = `
base:
  preset: xen-2017-hybrid
  set:
    memory.pages: 4096
    memory.outstanding: { kind: all }
    workload.region: { start: 0, count: 1024 }
    link.rateMbps: 1000
    limits.stopAt: resume
axes:
  ring.capacity: [1, 64]
replications: 2
seed: 3
`;

function sweepFile(dir: string, text = SWEEP): string {
  writeFileSync(join(dir, 'sweep.yaml'), text);
  return join(dir, 'sweep.yaml');
}

/** A finished sweep in DIR/out, cut back to its first `keep` records as a killed one would be. */
async function partialSweep(keep: number): Promise<{ dir: string; out: string; file: string }> {
  const dir = tmp();
  const file = sweepFile(dir);
  const out = join(dir, 'out');
  expect((await cli('sweep', file, '-o', out, '-j', '1')).code).toBe(0);
  const lines = readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n');
  writeFileSync(join(out, 'runs.jsonl'), `${lines.slice(0, keep).join('\n')}\n`);
  return { dir, out, file };
}

describe('sweep --resume', () => {
  it('refuses a sweep file whose base changed, naming the field, and leaves the directory as it was', async () => {
    const { out, file } = await partialSweep(2);
    const before = readFileSync(join(out, 'runs.jsonl'), 'utf8');
    writeFileSync(file, SWEEP.replace('link.rateMbps: 1000', 'link.rateMbps: 10000'));
    const r = await cli('sweep', file, '-o', out, '--resume');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`postcopy-emu: cannot resume ${out}: it was started with another sweep (the base scenario changed at link.rateMbps); use a new --out\n`);
    expect(readFileSync(join(out, 'runs.jsonl'), 'utf8')).toBe(before);
  });

  it('refuses changed axes, and another shard', async () => {
    const { out, file } = await partialSweep(1);
    writeFileSync(file, SWEEP.replace('ring.capacity: [1, 64]', 'ring.capacity: [1, 8]'));
    const axes = await cli('sweep', file, '-o', out, '--resume');
    expect(axes.code).toBe(2);
    expect(axes.err).toContain('its configurations differ from this sweep file\'s');
    writeFileSync(file, SWEEP);
    const shard = await cli('sweep', file, '-o', out, '--resume', '--shard', '1/2');
    expect(shard).toMatchObject({ code: 2, err: `postcopy-emu: cannot resume ${out}: it holds shard none (the whole sweep), not 1/2\n` });
  });

  it('continues the same sweep to the same results', async () => {
    const { out, file } = await partialSweep(2);
    const r = await cli('sweep', file, '-o', out, '--resume');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).index)).toEqual([0, 1, 2, 3]);
  });

  it('skips lines that are not run records, naming them, and runs those runs again', async () => {
    const { out, file } = await partialSweep(2);
    const path = join(out, 'runs.jsonl');
    writeFileSync(path, `${readFileSync(path, 'utf8')}null\n{"index":5}\n{"index":2,"con`);
    const r = await cli('sweep', file, '-o', out, '--resume');
    expect(r.code).toBe(0);
    expect(r.err.trim().split('\n')).toEqual([
      `postcopy-emu: warning: ${path} line 3: not a run record (record: Invalid input: expected object, received null); that run runs again`,
      `postcopy-emu: warning: ${path} line 4: not a run record (config: Invalid input: expected number, received undefined); that run runs again`,
      `postcopy-emu: warning: ${path} line 5: not JSON; that run runs again`,
    ]);
    expect(readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l).index)).toEqual([0, 1, 2, 3]);
  });

  it('compare DIR skips bad lines with a warning instead of failing', async () => {
    const { out } = await partialSweep(4);
    const path = join(out, 'runs.jsonl');
    writeFileSync(path, `null\n${readFileSync(path, 'utf8')}`);
    const r = await cli('compare', out);
    expect(r.code).toBe(0);
    expect(r.err).toBe(`postcopy-emu: warning: ${path} line 1: not a run record (record: Invalid input: expected object, received null); skipped\n`);
    expect(r.out).toContain('(mean over 4 runs)');
  });
});

describe('output paths', () => {
  it('sweep --out naming a file, or a kernel file system, exits 2 before any run', async () => {
    const dir = tmp();
    const file = sweepFile(dir);
    const r = await cli('sweep', file, '-o', file);
    expect(r).toMatchObject({ code: 2, err: `postcopy-emu: cannot create ${file}: a file of that name exists\n` });
    expect((await cli('sweep', file, '-o', '/proc/x'))).toMatchObject({ code: 2, err: 'postcopy-emu: cannot write into /proc/x: not a regular file system\n' });
    expect(readdirSync(dir)).toEqual(['sweep.yaml']);
  });

  it('merge --out naming a file exits 2 with one line', async () => {
    const { out } = await partialSweep(4);
    const file = join(out, 'runs.csv');
    expect(await cli('merge', out, '-o', file)).toMatchObject({ code: 2, err: `postcopy-emu: cannot create ${file}: a file of that name exists\n` });
  });

  it('report and trace import check their output before the work, leaving no temp file behind', async () => {
    const { out } = await partialSweep(4);
    expect(await cli('report', out, '-o', '/nonexistent/r.html')).toMatchObject({ code: 2, err: 'postcopy-emu: cannot write /nonexistent/r.html: no such directory\n' });
    const csv = join(out, 'trace.csv');
    writeFileSync(csv, 'time_ns,gfn,op\n0,1,r\n');
    expect(await cli('trace', 'import', csv, '-o', out, '-f', 'csv')).toMatchObject({ code: 2, err: `postcopy-emu: cannot write ${out}: it is a directory\n` });
    expect(readdirSync(out).filter((f) => !['runs.jsonl', 'runs.csv', 'metrics.md', 'manifest.json', 'trace.csv'].includes(f))).toEqual([]);
    expect(existsSync(join(out, 'report.html'))).toBe(false);
  });
});

describe('run --json', () => {
  it('names an output path that cannot be written before the run, exit 2', async () => {
    expect(await cli('run', '--preset', 'xen-2017-hybrid', '--json', '/nonexistent/x.json'))
      .toEqual({ code: 2, out: '', err: 'postcopy-emu: cannot write /nonexistent/x.json: no such directory\n' });
  });
});

describe('shards', () => {
  it('refuses --shard together with --shards instead of ignoring one', async () => {
    const dir = tmp();
    expect(await cli('sweep', sweepFile(dir), '-o', join(dir, 'o'), '--shard', '1/2', '--shards', '3'))
      .toEqual({ code: 2, out: '', err: 'postcopy-emu: --shards: give --shard K/N or --shards N (with a task index variable), not both\n' });
  });
});

describe('cluster tasks', () => {
  it('says how many runs were resumed and which shard the task variable picked (1-based)', async () => {
    const dir = tmp();
    const file = sweepFile(dir);
    const out = join(dir, 's');
    process.env.SLURM_ARRAY_TASK_ID = '0';
    process.env.SLURM_ARRAY_TASK_COUNT = '1';
    try {
      const first = await cli('sweep', file, '-o', out, '--shards', '2');
      expect(first.out).toBe(`2 runs (2 configurations × 2 replications, shard 1/2 from SLURM_ARRAY_TASK_ID=0) in ${out}: 2 ok, 0 failed (0 resumed from runs.jsonl, 2 run now)\n`);
      const lines = readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n');
      writeFileSync(join(out, 'runs.jsonl'), `${lines[0]}\n`);
      const again = await cli('sweep', file, '-o', out, '--shards', '2', '--resume');
      expect(again.out).toContain(': 2 ok, 0 failed (1 resumed from runs.jsonl, 1 run now)');
      // The same directory with another shard count is refused.
      expect((await cli('sweep', file, '-o', out, '--shards', '3', '--resume')).err).toBe(`postcopy-emu: cannot resume ${out}: it holds shard 1/2, not 1/3\n`);
      expect((await cli('sweep', file, '-o', join(dir, 'u'))).err).toBe('postcopy-emu: --shards: SLURM_ARRAY_TASK_ID is set: give the number of shards with --shards N (or POSTCOPY_EMU_SHARDS); it is never taken from the array\'s size\n');
    } finally {
      delete process.env.SLURM_ARRAY_TASK_ID;
      delete process.env.SLURM_ARRAY_TASK_COUNT;
    }
  });

  it('merge refuses shards of different counts', async () => {
    const dir = tmp();
    const file = sweepFile(dir);
    expect((await cli('sweep', file, '-o', join(dir, 'a'), '--shard', '1/2')).code).toBe(0);
    expect((await cli('sweep', file, '-o', join(dir, 'b'), '--shard', '2/3')).code).toBe(0);
    expect((await cli('merge', join(dir, 'a'), join(dir, 'b'), '-o', join(dir, 'm'))).err)
      .toBe(`postcopy-emu: the directories hold shards of different counts (${join(dir, 'a')}: 1/2, ${join(dir, 'b')}: 2/3)\n`);
  });

  it('stops its workers on SIGTERM and leaves a directory --resume finishes', async () => {
    const dir = tmp();
    // Slower runs (256 MiB, 1 worker) so the signal lands mid-sweep.
    const file = sweepFile(dir, SWEEP.replace('memory.pages: 4096', 'memory.pages: 65536').replace('count: 1024', 'count: 16384').replace('replications: 2', 'replications: 6'));
    const out = join(dir, 'out');
    const child = spawn(process.execPath, [join(root, 'bin/postcopy-emu.mjs'), 'sweep', file, '-o', out, '-j', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    const code = await signalMidSweep(child, out, 'SIGTERM');
    expect(code).toBe(143);
    expect(stdout).toMatch(new RegExp(`^interrupted by SIGTERM: \\d+ runs recorded in ${out} \\(0 resumed\\); continue with --resume\\n$`));
    const kept = readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n').length;
    expect(kept).toBeLessThan(12);
    const r = await cli('sweep', file, '-o', out, '--resume');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`: 12 ok, 0 failed (${kept} resumed from runs.jsonl, ${12 - kept} run now)`);
  }, 60_000);
});

/** A worker that answers n with 10·n and dies on 3, outside any handler's reach. */
const CRASHING_WORKER = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (n) => {
  if (n === 3) throw new Error('boom');
  parentPort.postMessage(n * 10);
});
`;

/** A worker that answers n with 10·n and ends its thread with exit code 7 on 2, no error thrown. */
const EXITING_WORKER = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (n) => {
  if (n === 2) process.exit(7);
  parentPort.postMessage(n * 10);
});
`;

/**
 * Writes a worker module into a temporary directory: plain JavaScript (.mjs: ESM outside the
 * project too), which a worker loads itself. A TypeScript one went through tsx's loader (module
 * hooks on a thread of their own in each worker, with known deadlocks: nodejs/node#50948), and
 * the exiting worker's test once timed out in CI waiting for its replacement's reply.
 */
function workerFile(name: string, code: string): string {
  const module = join(mkdtempSync(join(tmpdir(), 'pce-pool-')), `${name}.mjs`);
  writeFileSync(module, code);
  return module;
}

describe('the worker pool', () => {
  it('answers the message a crashed worker ran by crashed(), and runs those queued behind it on its replacement', async () => {
    const module = workerFile('crashing-worker', CRASHING_WORKER);
    // Five pools: the worker's error may reach the pool before or after its reply to 2 (it once
    // came first, and the crash was pinned on 2); the answers must not depend on which.
    for (let i = 0; i < 5; i++) {
      const pool = new WorkerPool<number, number | string>(pathToFileURL(module), 1, (n, e) => `${n}: ${e.message}`);
      try {
        // One worker holds two messages at once: 4 waits behind 3 when 3 kills it.
        expect(await Promise.all([1, 2, 3, 4, 5, 6].map((n) => pool.run(n)))).toEqual([10, 20, '3: boom', 40, 50, 60]);
      } finally {
        await pool.close();
      }
    }
  });

  it('answers the message a worker exited on by crashed(), with its exit code', async () => {
    const module = workerFile('exiting-worker', EXITING_WORKER);
    const pool = new WorkerPool<number, number | string>(pathToFileURL(module), 1, (n, e) => `${n}: ${e.message}`);
    try {
      expect(await Promise.all([1, 2, 3].map((n) => pool.run(n)))).toEqual([10, '2: the worker exited with code 7', 30]);
    } finally {
      await pool.close();
    }
  });

  it('runs every message on the workers limit() keeps', async () => {
    const module = workerFile('thread-worker', `import { parentPort, threadId } from 'node:worker_threads';
parentPort.on('message', (n) => parentPort.postMessage([n * 10, threadId]));
`);
    const pool = new WorkerPool<number, [number, number]>(pathToFileURL(module), 3, (n) => [n, -1]);
    try {
      pool.limit(1);
      const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => pool.run(n)));
      expect(replies.map(([v]) => v)).toEqual([10, 20, 30, 40, 50]);
      expect(new Set(replies.map(([, thread]) => thread)).size).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('docs/clusters.md', () => {
  it('shows the Slurm scripts exactly as examples/slurm/ ships them', () => {
    const doc = readFileSync(join(root, 'docs/clusters.md'), 'utf8');
    for (const f of ['sweep.sh', 'merge.sh']) expect(doc).toContain(`\`\`\`bash\n${readFileSync(join(root, 'examples/slurm', f), 'utf8')}\`\`\``);
  });
});
