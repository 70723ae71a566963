/**
 * The SimPy peer (issue 13): the same ring-bound storm as a plain SimPy 2 script a researcher
 * would write, whole process against whole process, median of 5. Needs Debian's python3-simpy
 * and the script in ../shared/peers/ (the project's shared folder beside the checkout).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { medianMs } from './startup.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = `${root}../shared/peers/simpy_storm.py`;
const python = '/usr/bin/python3';

/** Rows for 131,072 and 524,288 faults: the emulator's wall, SimPy's, and the ratio. */
export function peerRows(): { case: string; wallMs: number; ratio?: number }[] {
  if (!existsSync(script) || spawnSync(python, ['-c', 'import SimPy']).status !== 0) {
    process.stderr.write(`bench: the SimPy peer is skipped: it needs ${script} and \`apt-get install python3-simpy\`\n`);
    return [];
  }
  return [131_072, 524_288].flatMap((pages) => {
    const storm = ['--set', `memory.pages=${pages}`, '--set', `mapper.mapping={kind: buckets, bucketPages: 8, count: ${pages / 8}}`];
    const emu = medianMs([`${root}bin/postcopy-emu.mjs`, 'run', 'bench/storm-131072.yaml', ...storm]);
    const peer = medianMs([script, String(pages), '8', '1e9', '50', '2'], 5, python);
    return [
      { case: `peer: postcopy-emu storm-${pages}`, wallMs: emu, ratio: Math.round((emu / peer) * 100) / 100 },
      { case: `peer: simpy_storm.py ${pages}`, wallMs: peer },
    ];
  });
}
