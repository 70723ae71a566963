/**
 * The SimPy peer (issue 13): the same ring-bound storm as a plain SimPy 2 script a researcher
 * would write, whole process against whole process, in turn (see peerRows). Needs Debian's python3-simpy
 * and the script in ../shared/peers/ (the project's shared folder beside the checkout).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median } from '../src/metrics/latency.ts';
import { wallMs } from './startup.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = `${root}../shared/peers/simpy_storm.py`;
const python = '/usr/bin/python3';

/**
 * Rows for 131,072 and 524,288 faults: the emulator's wall, SimPy's, and the ratio. The two run
 * in turn, five times, and the ratio is the median of the five pairs': this VM's speed drifts by
 * tens of percent within a minute, which five of one and then five of the other turned into the
 * ratio. Where the environment sets NODE_EXTRA_CA_CERTS (this VM: the system's CA bundle, which
 * node parses before any script runs, 80–130 ms a start), the emulator runs a third time in each
 * turn without it, as on a machine that does not set it: the difference is node's, not the emulator's.
 */
export function peerRows(): { case: string; wallMs: number; ratio?: number }[] {
  if (!existsSync(script) || spawnSync(python, ['-c', 'import SimPy']).status !== 0) {
    process.stderr.write(`bench: the SimPy peer is skipped: it needs ${script} and \`apt-get install python3-simpy\`\n`);
    return [];
  }
  const { NODE_EXTRA_CA_CERTS: certs, ...bare } = process.env;
  return [131_072, 524_288].flatMap((pages) => {
    const storm = ['--set', `memory.pages=${pages}`, '--set', `mapper.mapping={kind: buckets, bucketPages: 8, count: ${pages / 8}}`];
    const args = [`${root}bin/postcopy-emu.mjs`, 'run', 'bench/storm-131072.yaml', ...storm];
    const emu: number[] = [], emuBare: number[] = [], peer: number[] = [];
    for (let i = 0; i < 5; i++) {
      emu.push(wallMs(args));
      if (certs !== undefined) emuBare.push(wallMs(args, process.execPath, bare));
      peer.push(wallMs([script, String(pages), '8', '1e9', '50', '2'], python));
    }
    const row = (name: string, ms: number[]) => ({
      case: `peer: postcopy-emu storm-${pages}${name}`, wallMs: Math.round(median(ms)),
      ratio: Math.round(median(ms.map((x, i) => x / peer[i]!)) * 100) / 100,
    });
    return [
      row('', emu),
      ...(certs === undefined ? [] : [row(' without NODE_EXTRA_CA_CERTS', emuBare)]),
      { case: `peer: simpy_storm.py ${pages}`, wallMs: Math.round(median(peer)) },
    ];
  });
}
