import type { Command } from 'commander';
import { UsageError } from '../../io/errors.ts';
import { wholeNumber } from '../io.ts';
import { scenarioCommand, scenarioFrom, writeJson, type ScenarioOptions } from './run.ts';

export function registerLive(cmd: Command, out: (s: string) => void, fail: () => void): void {
  scenarioCommand(cmd, 'live', 'run a postcopy scenario for real: a source and a destination process over TCP, real page bytes, the userfaultfd (or software) pager, every page verified; preempt.enabled and the link-cut and source-crash faults (postcopy recovery) run for real too')
    .option('--listen <host:port>', 'listen there for a destination started elsewhere (`live --destination`), instead of forking one on loopback')
    .option('--destination <host:port>', 'be the destination: connect to the source at HOST:PORT')
    .option('--backend <kind>', 'the destination\'s pager: auto (userfaultfd when the addon can open one, else software), uffd or software', 'auto')
    .option('--wire', 'pace the stream at the scenario\'s link.rateMbps, as a wire of that rate: the destination reads no faster, and the bytes behind it queue in the kernels\' buffers as behind a real link')
    .option('--calibrate', 'measure this host\'s per-operation costs (UFFDIO_COPY, fault wake-up, loopback TCP) and the live stream\'s rate, and write them as a parameter set the model loads')
    .option('--output <file>', 'with --calibrate: where the parameter set goes', 'host-local.yaml')
    .option('--runs <n>', 'with --calibrate: how often each measurement runs; each value is the median of the runs\' medians (default 3)')
    .action(async (file: string | undefined, o: ScenarioOptions & { json?: string; listen?: string; destination?: string; backend: string; wire?: boolean; calibrate?: boolean; output: string; runs?: string }) => {
      if (o.runs !== undefined && !o.calibrate) throw new UsageError('--runs goes with --calibrate', '--runs');
      if (o.calibrate) {
        if (file || o.preset || o.set.length > 0 || o.destination || o.listen || o.json || o.wire) throw new UsageError('--calibrate measures the host alone: give no scenario, --destination, --listen, --json or --wire');
        const runs = o.runs === undefined ? undefined : wholeNumber('--runs', o.runs, 1);
        const [{ calibrate }, { checkOutputFile, writeAtomic }] = await Promise.all([import('../../live/calibrate.ts'), import('../../io/write.ts')]);
        checkOutputFile(o.output);
        const c = await calibrate(runs);
        writeAtomic(o.output, c.yaml);
        return out(`${c.table}wrote ${o.output}\n`);
      }
      if (!['auto', 'uffd', 'software'].includes(o.backend)) throw new UsageError(`--backend: must be auto, uffd or software, got "${o.backend}"`, '--backend');
      const backend = o.backend as 'auto' | 'uffd' | 'software';
      const live = await import('../../live/live.ts');
      if (o.destination !== undefined) {
        if (file || o.preset || o.set.length > 0 || o.seed !== undefined || o.listen || o.json || o.wire) {
          throw new UsageError('--destination takes the scenario from the source: give no FILE, --preset, --set, --seed, --listen, --json or --wire');
        }
        const { host, port } = live.hostPort('--destination', o.destination);
        return live.runDestinationAt(host, port, backend);
      }
      const input = await scenarioFrom(file, o);
      const [{ parseScenario }, { formatTable }, { checkOutputFile }] = await Promise.all([
        import('../../scenario/validate.ts'), import('../table.ts'), import('../../io/write.ts'),
      ]);
      const s = parseScenario(input);
      live.checkLive(s, o.wire);
      const listen = o.listen === undefined ? undefined : live.hostPort('--listen', o.listen);
      if (o.json && o.json !== '-') checkOutputFile(o.json);
      const report = await live.runLive(s, { ...(listen ? { listen } : {}), backend, wire: o.wire === true });
      if (o.json) await writeJson(o.json, report, out);
      const l = report.live;
      if (o.json !== '-') {
        out(`${formatTable([report], [`${report.emulator.scenario} (live)`])}\n`);
        out(`live: ${l['verified-pages']} pages verified, ${l.mismatches} mismatches; ${l['pages-per-second']} pages/s (${(l['page-bytes-per-second'] / 2 ** 20).toFixed(0)} MiB/s of page bytes); backend ${l.backend}${l['backend-reason'] ? ` (${l['backend-reason']})` : ''}${l['wire-mbps'] ? `; over a ${l['wire-mbps']} Mbit/s wire` : ''}\n`);
      }
      if (report.status !== 'completed') fail();
    });
}
