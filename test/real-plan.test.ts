import { describe, expect, it } from 'vitest';
import { realPlan, type RealOptions } from '../src/live/qemu/plan.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { ScenarioError } from '../src/scenario/error.ts';

const OPTS: RealOptions = { qemu: '/usr/bin/qemu-system-x86_64', accel: 'kvm', uncapped: false, dir: '/tmp/pce', port: 4444 };
const plan = (input: ScenarioInput, o: Partial<RealOptions> = {}) => realPlan(parseScenario(input), { ...OPTS, ...o });

const COMMON = (qmp: string, accel: string[], mib: number) => [
  '/usr/bin/qemu-system-x86_64', '-machine', 'pc', '-cpu', 'qemu64', ...accel, '-smp', '1', '-m', `${mib}M`,
  '-bios', '/tmp/pce/firmware.bin', '-nodefaults', '-display', 'none', '-qmp', `unix:/tmp/pce/${qmp},server=on,wait=off`,
];
const TRACE = ['-trace', 'enable=postcopy_page_req_add', '-trace', 'enable=postcopy_page_req_del', '-trace', 'enable=loadvm_postcopy_ram_handle_discard',
  '-trace', 'enable=loadvm_handle_cmd_packaged', '-trace', 'enable=loadvm_postcopy_handle_listen', '-msg', 'timestamp=on', '-D', '/tmp/pce/destination-trace.log'];
const SOURCE_TRACE = ['-trace', 'enable=savevm_state_complete_precopy', '-trace', 'enable=migration_bitmap_sync_start', '-trace', 'enable=migration_bitmap_sync_end',
  '-trace', 'enable=savevm_send_postcopy_run', '-msg', 'timestamp=on', '-D', '/tmp/pce/source-trace.log'];

describe('scenario → QEMU command lines and QMP settings', () => {
  it('1 GiB guest, sequential 256 MiB writer, postcopy from the start at 1 Gbit/s, KVM', () => {
    const p = plan({ memory: { pages: 262144 }, workload: { kind: 'sequential', region: { start: 0, count: 65536 } }, migration: { mode: 'postcopy' }, link: { rateMbps: 1000 } });
    expect(p.source).toEqual([...COMMON('source.qmp', ['-enable-kvm'], 1024), '-name', 'pce-source,debug-threads=on', ...SOURCE_TRACE]);
    expect(p.destination).toEqual([...COMMON('destination.qmp', ['-enable-kvm'], 1024), '-name', 'pce-destination,debug-threads=on', '-incoming', 'defer', ...TRACE]);
    expect(p.uri).toBe('tcp:127.0.0.1:4444');
    expect(p.firmware).toEqual({ mode: 'sequential', base: 0x100000, pages: 65536 });
    expect(p.switch).toEqual({ kind: 'start' });
    expect(p.capabilities).toEqual([
      { capability: 'events', state: true }, { capability: 'postcopy-ram', state: true }, { capability: 'postcopy-blocktime', state: true },
    ]);
    expect(p.parameters).toEqual({ 'max-bandwidth': 125_000_000, 'max-postcopy-bandwidth': 125_000_000, 'downtime-limit': 300 });
  });

  it('precopy with 4 multifd channels, uncapped, under TCG', () => {
    const p = plan({ memory: { pages: 65536 }, workload: { kind: 'idle' }, migration: { mode: 'precopy' }, multifd: { channels: 4 }, precopy: { downtimeLimitMs: 50 } },
      { accel: 'tcg', uncapped: true });
    expect(p.source).toEqual([...COMMON('source.qmp', ['-accel', 'tcg'], 256), '-name', 'pce-source,debug-threads=on', ...SOURCE_TRACE]);
    expect(p.firmware).toEqual({ mode: 'idle', base: 0x100000, pages: 65536 - 256 });
    expect(p.switch).toEqual({ kind: 'never' });
    expect(p.capabilities).toEqual([{ capability: 'events', state: true }, { capability: 'multifd', state: true }]);
    expect(p.parameters).toEqual({ 'max-bandwidth': 2 ** 40, 'max-postcopy-bandwidth': 0, 'downtime-limit': 50, 'multifd-channels': 4, 'multifd-compression': 'none' });
  });

  it('hybrid after one pass with postcopy-preempt, a random writer at 10 Gbit/s', () => {
    const p = plan({ memory: { pages: 131072 }, workload: { kind: 'random', region: { start: 256, count: 1024 } },
      migration: { mode: 'hybrid', switchAfterIterations: 1 }, preempt: { enabled: true }, link: { rateMbps: 10000 } });
    expect(p.ramBytes).toBe(512 * 2 ** 20);
    expect(p.firmware).toEqual({ mode: 'random', base: 0x200000, pages: 1024 });
    expect(p.switch).toEqual({ kind: 'hybrid', afterPasses: 1, atMs: null });
    expect(p.capabilities.map((c) => c.capability)).toEqual(['events', 'postcopy-ram', 'postcopy-blocktime', 'postcopy-preempt']);
    expect(p.parameters['max-bandwidth']).toBe(1_250_000_000);
  });

  it('runs a shuffled writer as the firmware\'s random order, which is that shuffle', () => {
    expect(plan({ memory: { pages: 65536 }, workload: { kind: 'shuffled', region: { start: 0, count: 512 } }, migration: { mode: 'postcopy' } }).firmware)
      .toEqual({ mode: 'random', base: 0x100000, pages: 512 });
  });

  it('refuses what a real run cannot do, naming the field', () => {
    const refused = (input: ScenarioInput) => {
      try {
        plan(input);
      } catch (e) {
        expect(e).toBeInstanceOf(ScenarioError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused({ memory: { pages: 65536 }, migration: { mode: 'postcopy' }, multifd: { channels: 2 } }))
      .toBe('multifd.channels: multifd with postcopy aborts the destination in QEMU 7.2 (yank_unregister_instance): use it with migration.mode precopy, not postcopy');
    expect(refused({ memory: { pages: 65536 }, migration: { mode: 'precopy' }, preempt: { enabled: true } }))
      .toBe('preempt.enabled: postcopy-preempt needs migration.mode postcopy or hybrid');
    expect(refused({ memory: { pages: 65536 }, workload: { kind: 'hot-set' } })).toBe('workload.kind: the real guest runs idle, sequential or shuffled (random: shuffled), not hot-set');
    expect(refused({ memory: { pages: 65600 } })).toBe('memory.pages: QEMU\'s -m takes whole MiB: memory.pages must be a multiple of 256, got 65600');
    expect(refused({ memory: { pages: 65536 }, workload: { kind: 'sequential', region: { start: 65000, count: 400 } } }))
      .toBe('workload.region: pages [65000, 65400) from 1 MiB must end within the 65280 pages of low RAM the 32-bit guest reaches');
    expect(refused({ memory: { pages: 65536 }, migration: { mode: 'hybrid' } }))
      .toBe('migration.switchAfterIterations: a real hybrid run switches after passes or at a time: give switchAfterIterations ≥ 1 or switchAtNs');
  });
});
