import { join } from 'node:path';
import type { Command } from 'commander';
import type { RealRunOptions } from '../../live/qemu/harness.ts';
import type { Scenario } from '../../scenario/schema.ts';
import { ScenarioError } from '../../scenario/error.ts';
import { wholeNumber } from '../io.ts';
import { progressBar } from '../progress.ts';
import { scenarioFrom, scenarioOptions, type ScenarioOptions } from './run.ts';

interface QemuOptions {
  qemu?: string;
  accel: string;
  uncapped?: boolean;
  timeout: string;
}

function qemuOptions(c: Command): Command {
  return c.option('--qemu <path>', 'the qemu-system-x86_64 binary (default: the one on PATH)')
    .option('--accel <kind>', 'kvm, or tcg to emulate the CPU where /dev/kvm is missing (slower: not KVM timings)', 'kvm')
    .option('--uncapped', 'no bandwidth cap (max-bandwidth 1 TiB/s, max-postcopy-bandwidth 0) instead of link.rateMbps')
    .option('--timeout <s>', 'give up on a run (and kill both QEMUs) after this many seconds', '300');
}

/**
 * The harness's inputs, checked before any QEMU starts: the binary, KVM, userfaultfd for
 * postcopy modes, the version. Each missing piece is one line naming the fix (exit 2).
 */
async function prepare(o: QemuOptions, scenarios: Scenario[]) {
  const accel = o.accel;
  if (accel !== 'kvm' && accel !== 'tcg') throw new ScenarioError('--accel', `must be kvm or tcg, got "${accel}"`);
  const timeoutMs = wholeNumber('--timeout', o.timeout, 1) * 1000;
  const { findQemu, checkAccel, checkUserfaultfd, qemuVersion } = await import('../../live/qemu/prereq.ts');
  const qemu = findQemu(o.qemu);
  checkAccel(accel);
  if (scenarios.some((s) => s.migration.mode !== 'precopy')) checkUserfaultfd();
  const { runReal } = await import('../../live/qemu/harness.ts');
  const opts: RealRunOptions = { qemu, qemuVersion: qemuVersion(qemu), accel, uncapped: o.uncapped === true, timeoutMs };
  return (s: Scenario) => runReal(s, opts);
}

export function registerReal(cmd: Command, out: (s: string) => void, fail: () => void): void {
  const real = cmd.command('real')
    .description('run a scenario as a real live migration between two QEMU processes on this host (docs/real-qemu.md)');

  qemuOptions(scenarioOptions(real.command('run', { isDefault: true })
    .description('run one scenario for real and print its summary (the default: `real FILE`)')
    .argument('[file]', 'scenario file, YAML or JSON')))
    .option('-o, --out <dir>', 'write the result (the JSON shape of run --json, plus `real`) to DIR/result.json')
    .action(async (file: string | undefined, o: ScenarioOptions & QemuOptions & { out?: string }) => {
      const [{ parseScenario }, { realPlan }, { prepareOutputDir, writeAtomic }] = await Promise.all([
        import('../../scenario/validate.ts'), import('../../live/qemu/plan.ts'), import('../../io/write.ts'),
      ]);
      const scenario = parseScenario(await scenarioFrom(file, o));
      // The mapping is checked before the prerequisites: bad input is named first.
      realPlan(scenario, { qemu: 'qemu', accel: 'tcg', uncapped: false, dir: '', port: 0 });
      const runOne = await prepare(o, [scenario]);
      if (o.out) prepareOutputDir(o.out);
      const { RealRunError } = await import('../../live/qemu/errors.ts');
      let report;
      try {
        report = await runOne(scenario);
      } catch (e) {
        if (!(e instanceof RealRunError)) throw e;
        process.stderr.write(`postcopy-emu: real run failed: ${e.message}\n`);
        return fail();
      }
      const { formatTable } = await import('../table.ts');
      if (o.out) writeAtomic(join(o.out, 'result.json'), JSON.stringify(report, null, 2) + '\n');
      const r = report.real;
      out(`${formatTable([report], [`${scenario.name} (real)`])}\n`);
      out(`QEMU ${r['qemu-version']} (${r.accel}), entered postcopy: ${r['entered-postcopy'] ? 'yes' : 'no'}, STOP→RESUME ${r['stop-to-resume-ms'] ?? '-'} ms, guest passes ${r.guest['passes-at-source']} → ${r.guest['passes-at-destination']} (verified)${r.guest['page-ns'] === null ? '' : `, ${r.guest['page-ns']} ns a page alone`}\n`);
      const sw = r.switchover;
      if (sw['device-save-ms'] !== null || sw['listen-ms'] !== null) {
        out(`switchover (QEMU's trace): device save ${sw['device-save-ms'] ?? '-'} ms, final sync ${sw['sync-ms'] ?? '-'} ms, discards ${sw['discard-ms'] ?? '-'} ms, package ${sw['package-bytes'] ?? '-'} bytes, listen ${sw['listen-ms'] ?? '-'} ms, load to RESUME ${sw['load-ms'] ?? '-'} ms\n`);
      }
      // The busiest threads: CPU, and (in brackets) runnable but waiting for a CPU.
      const busy = r.threads.slice(0, 4).map((t) => `${t.side} ${t.name} ${t['cpu-ms']} (${t['runqueue-ms']})`);
      if (busy.length > 0) out(`threads, CPU ms (waiting for a CPU): ${busy.join(', ')}\n`);
      const q = r.sockets;
      if (q['ahead-p50'] !== null) out(`socket queues while streaming (median of ${q['busy-samples']} samples): Send-Q ${q['send-q-p50']} + Recv-Q ${q['recv-q-p50']} = ${q['ahead-p50']} bytes ahead, Send-Q at most ${q['send-q-max']}\n`);
      if (o.out) out(`${join(o.out, 'result.json')}\n`);
      for (const w of report.emulator.warnings.slice(1)) process.stderr.write(`postcopy-emu: warning: ${w}\n`);
    });

  qemuOptions(real.command('sweep')
    .description('run a sweep file (the `sweep` format) for real, one run at a time, into runs.jsonl / runs.csv')
    .argument('<file>', 'sweep file, YAML or JSON'))
    .requiredOption('-o, --out <dir>', 'output directory')
    .option('--replications <n>', 'replications per configuration (default: the sweep file\'s)')
    .action(async (file: string, o: QemuOptions & { out: string; replications?: string }) => {
      const { readRealSweep, realScenarios, runRealSweep } = await import('../../live/qemu/sweep.ts');
      const sweep = readRealSweep(file, o.replications === undefined ? undefined : wholeNumber('--replications', o.replications, 1));
      const runOne = await prepare(o, realScenarios(sweep));
      const bar = progressBar('real sweep [{bar}] {value}/{total} runs | ETA {eta_formatted}');
      const records = await runRealSweep(sweep, {
        dir: o.out, run: runOne, timestamp: () => new Date().toISOString(),
        progress: (done, total) => bar.update(done, total, {}),
      });
      bar.stop();
      const failed = records.filter((r) => r.status === 'failed');
      out(`${records.length} real runs (${sweep.configs} configurations × ${sweep.spec.replications} replications) in ${o.out}: ${records.length - failed.length} ok, ${failed.length} failed\n`);
      for (const f of failed.slice(0, 5)) out(`  run ${f.index} ${JSON.stringify(f.params)}: ${f.error}\n`);
      if (failed.length > 0) fail();
    });
}
