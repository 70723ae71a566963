import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadUffd } from '../src/live/uffd.ts';
import { Rng } from '../src/kernel/rng.ts';
import { drawZeroSet } from '../src/memory/guest-memory.ts';
import { applySets, presetInput } from '../src/scenario/load.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();
const dir = mkdtempSync(join(tmpdir(), 'pce-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 4 MiB guest, two vCPUs reading and writing at random over all of it, an 8-slot ring. */
const SMALL = ['--preset', 'xen-2017-pure', '--set', 'memory.pages=1024', '--set', 'mapper.mapping={kind: none}',
  '--set', 'workload.region={start: 0, count: 1024}', '--set', 'ring.capacity=8'];

describe('postcopy-emu live (software pager, two processes on loopback)', () => {
  it('moves every page as real bytes, verifies them all and reports in the run JSON shape', async () => {
    const json = join(dir, 'live.json');
    const r = await cli('live', ...SMALL, '--json', json);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/live: 1024 pages verified, 0 mismatches; \d+ pages\/s \(\d+ MiB\/s of page bytes\); backend (uffd|software \(.+\))\n$/);
    const live = JSON.parse(readFileSync(json, 'utf8'));
    expect(live.status).toBe('completed');
    expect(live.live).toMatchObject({ backend: 'reason' in loadUffd() ? 'software' : 'uffd', 'verified-pages': 1024, mismatches: 0 });
    expect(live.ram.total).toBe(1024 * 4096);
    // Every page went once: pushed in the background or on request.
    expect(live.emulator['pages-pushed'] + live.ram['postcopy-requests']).toBeGreaterThanOrEqual(1024);
    expect(live.emulator['fault-latency'].count).toBe(live.emulator.faults.vcpu);
    expect(live.emulator.ring['max-occupancy']).toBeLessThanOrEqual(8);
    expect(live['total-time']).toBeGreaterThan(0);
    // Beside a model run of the same scenario.
    const emu = join(dir, 'emu.json');
    expect((await cli('run', ...SMALL, '--json', emu)).code).toBe(0);
    const c = await cli('compare', json, emu);
    expect(c.code).toBe(0);
    expect(c.out.split('\n')[0]).toMatch(/live\.json\s+\S*emu\.json$/);
  }, 60_000);

  it('runs the userfaultfd pager (--backend uffd) where the addon opens one, else names why not', async () => {
    const loaded = loadUffd();
    const r = await cli('live', ...SMALL, '--backend', 'uffd', '--json', '-');
    if ('reason' in loaded) {
      expect([r.code, r.err]).toEqual([2, `postcopy-emu: --backend uffd: ${loaded.reason}\n`]);
      return;
    }
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect([j.status, j.live.backend, j.live['backend-reason'], j.live['verified-pages'], j.live.mismatches]).toEqual(['completed', 'uffd', null, 1024, 0]);
    expect(j.emulator['fault-latency'].count).toBe(j.emulator.faults.vcpu);
    // emulator.host: this host's measurements, UFFDIO_COPY's among them (runs of the 64-page batches at least).
    const host = j.emulator.host;
    expect(host['fault-round-trip-ns'].count).toBe(j.emulator.faults.vcpu);
    // A fault's latency ends at the placement (QEMU's blocktime), before the vCPU runs again.
    expect(j.emulator['fault-latency'].p50).toBeLessThanOrEqual(host['fault-round-trip-ns'].p50);
    expect(host['uffd-copy-ns-per-page'].run).toBeGreaterThan(0);
    expect(host['uffd-copy-ns-per-page']['run-pages']).toBeGreaterThan(1);
    expect(host['bytes-sent']).toBe(j.live['bytes-sent']);
    // --backend software says why it ran.
    const sw = JSON.parse((await cli('live', ...SMALL, '--backend', 'software', '--json', '-')).out);
    expect([sw.live.backend, sw.live['backend-reason'], sw.emulator.host['uffd-copy-ns-per-page']]).toEqual(['software', 'the software pager was asked for', null]);
  }, 60_000);

  it('pushes in the order of the model\'s push policies', async () => {
    for (const policy of ['bubbling', 'push-only']) {
      const r = await cli('live', ...SMALL, '--set', 'memory.pages=512', '--set', 'workload.region={start: 0, count: 512}', '--set', `source.policy=${policy}`, '--json', '-');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out);
      expect([j.status, j.live['verified-pages'], j.live.mismatches]).toEqual(['completed', 512, 0]);
      // push-only never serves a request ahead of the background: every page goes out pushed.
      if (policy === 'push-only') expect(j.emulator['pages-pushed']).toBe(512);
    }
  }, 60_000);

  it('--calibrate measures this host\'s costs and writes a parameter set the model runs', async () => {
    const out = join(dir, 'host.yaml');
    // One run of each measurement (3 by default): the runs' count is in the file's header.
    const r = await cli('live', '--calibrate', '--runs', '1', '--output', out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^parameter\s+value\s+how measured\n/);
    expect(r.out.endsWith(`wrote ${out}\n`)).toBe(true);
    const yaml = readFileSync(out, 'utf8');
    expect(yaml).toMatch(/^# Per-operation costs measured on this host .*\n#   postcopy-emu live --calibrate\n# \(native\/calibrate\.c, 1 run: /);
    // Loopback TCP is always measured; userfaultfd where it opens (root here).
    expect(yaml).toMatch(/^link:\n  rateMbps: [1-9]\d*  # the live page stream: wire bytes of an idle 256 MiB guest/m);
    expect(yaml).toMatch(/^  latencyNs: [1-9]\d*  # half a 16-byte ping-pong/m);
    // Xen's retry sleep and load path, as this host has them: usleep(100) overslept, the page load's syscalls.
    expect(yaml).toMatch(/^mapper:\n  timerSlackNs: [1-9]\d*  # usleep\(100\) − 100 µs/m);
    expect(yaml).toMatch(/^  loadPageNs: [1-9]\d*  # memcpy of 4 KiB into the page buffer \(memcpy_4k \d+\) \+ mlock and munlock/m);
    expect(yaml).toMatch(/^multifd:\n  handoffNs: [1-9]\d*  # a semaphore post → the thread asleep in sem_wait runs/m);
    // The discard at the switch: a call, and per 4 KiB of huge pages.
    expect(yaml).toMatch(/^  discardRangeNs: [1-9]\d*  # madvise\(MADV_DONTNEED\) of one populated 4 KiB page/m);
    expect(yaml).toMatch(/^  discardPageNs: \d+  # madvise\(MADV_DONTNEED\) of populated huge pages, per 4 KiB/m);
    // QEMU's zero-page check of RAM the guest never wrote.
    expect(yaml).toMatch(/^source:\n  zeroCheckNs: [1-9]\d*  # the zero check of a 4 KiB page the guest never wrote/m);
    if (!('reason' in loadUffd())) {
      expect(yaml).toMatch(/^pager:\n  uffdCopyNs: [1-9]\d*  # UFFDIO_COPY of one 4 KiB page/m);
      // The link's buffers: what the stream held on each side, sampled (the addon reads the kernel's
      // queues); all of it, with half the destination's 1 MiB read, ahead of a page sent now.
      const ahead = /^  sendBufferBytes: (\d+)  # bytes ahead of a page sent now/m.exec(yaml);
      expect(Number(ahead?.[1])).toBeGreaterThanOrEqual(512 * 1024);
      expect(yaml).toMatch(/^  receiveBufferBytes: \d+  # median bytes unread in the live destination's receive queue/m);
    }
    // The fragment is a scenario: the model runs it.
    const run = await cli('run', out, '--set', 'memory.pages=1024', '--json', '-');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out).status).toBe('completed');
    expect((await cli('live', '--calibrate', '--preset', 'xen-2017-pure')).err).toBe('postcopy-emu: --calibrate measures the host alone: give no scenario, --destination, --listen, --json or --wire\n');
    expect(await cli('live', '--calibrate', '--runs', '0')).toMatchObject({ code: 2, err: 'postcopy-emu: --runs: must be a whole number ≥ 1, got "0"\n' });
    expect(await cli('live', '--runs', '2', '--preset', 'xen-2017-pure')).toMatchObject({ code: 2, err: 'postcopy-emu: --runs goes with --calibrate\n' });
  }, 60_000);

  it('sends the scenario\'s zero pages as ZERO frames and places them as zero pages, on either pager', async () => {
    const zeroSets = ['--set', 'memory.zeroFraction=0.25', '--set', 'memory.zeroRanges=[{start: 512, count: 256}]'];
    const s = parseScenario(applySets(presetInput('xen-2017-pure'), ['memory.pages=1024', 'mapper.mapping={kind: none}', 'workload.region={start: 0, count: 1024}', 'memory.zeroFraction=0.25', 'memory.zeroRanges=[{start: 512, count: 256}]']));
    const zeros = drawZeroSet(1024, 0.25, new Rng(s.seed, 'zero-pages'), s.memory.zeroRanges)!.count();
    for (const backend of ['auto', 'software']) {
      const r = await cli('live', ...SMALL, ...zeroSets, '--backend', backend, '--json', '-');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out);
      expect([j.status, j.live['verified-pages'], j.live.mismatches, j.ram.duplicate, j.ram.normal]).toEqual(['completed', 1024, 0, zeros, 1024 - zeros]);
      // No page bytes for them: less on the wire than the guest.
      expect(j.live['bytes-sent']).toBeLessThan((1024 - zeros + 64) * 4096);
    }
    expect(zeros).toBeGreaterThan(256);
  }, 60_000);

  it('runs demand-only when a sequential vCPU touches every page: each fault a round trip with no stream', async () => {
    const r = await cli('live', '--preset', 'xen-2017-pure', '--set', 'memory.pages=512', '--set', 'mapper.mapping={kind: none}',
      '--set', 'workload={kind: sequential, vcpus: 1}', '--set', 'source.policy=demand', '--json', '-');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    // Every page was asked for, none pushed.
    expect([j.status, j.live['verified-pages'], j.live.mismatches, j.emulator['pages-pushed'], j.emulator['fault-latency'].count]).toEqual(['completed', 512, 0, 0, 512]);
    expect(j.ram['postcopy-requests']).toBe(512);
    // Each page's REQUEST timed from the destination building it to the source serving it (one host's clock).
    const transit = j.emulator.host['request-transit-ns'];
    expect(transit.count).toBe(512);
    expect(transit.p50).toBeGreaterThan(0);
    expect(transit.p50).toBeLessThan(j.emulator.host['fault-round-trip-ns'].p50);
    // And each page's way back, from the source serving it to its placement: part of its fault's round trip.
    const back = j.emulator.host['page-transit-ns'];
    expect(back.count).toBe(512);
    expect(back.p50).toBeGreaterThan(0);
    expect(back.p50).toBeLessThan(j.emulator.host['fault-round-trip-ns'].p50);
  }, 60_000);

  it('--listen waits for a destination started on its own (--destination), as on two machines', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((done) => probe.close(done));
    const source = cli('live', ...SMALL, '--listen', `127.0.0.1:${port}`, '--json', '-');
    // Until the source listens, the destination is refused (and says so, exit 2).
    let destination = await cli('live', '--destination', `127.0.0.1:${port}`, '--backend', 'software');
    for (let tries = 0; destination.code === 2 && /ECONNREFUSED/.test(destination.err) && tries < 50; tries++) {
      await new Promise((wait) => setTimeout(wait, 100));
      destination = await cli('live', '--destination', `127.0.0.1:${port}`, '--backend', 'software');
    }
    const r = await source;
    expect([destination.code, destination.out, r.code]).toEqual([0, '', 0]);
    const j = JSON.parse(r.out);
    expect([j.status, j.live.backend, j.live['verified-pages'], j.live.mismatches]).toEqual(['completed', 'software', 1024, 0]);
  }, 60_000);

  it('--wire reads the stream at link.rateMbps: no faster than that wire, every page verified', async () => {
    const r = await cli('live', ...SMALL, '--set', 'link.rateMbps=200', '--wire', '--json', '-');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect([j.status, j.live['verified-pages'], j.live.mismatches, j.live['wire-mbps']]).toEqual(['completed', 1024, 0, 200]);
    // 4 MiB of pages cannot cross a 200 Mbit/s wire in under 167.8 ms, less the one read (1 ms of
    // that wire, 25,000 bytes) a paced destination handles before the wire has delivered it
    // (src/live/wire.ts): 166.8 ms.
    expect(j['total-time']).toBeGreaterThanOrEqual(((1024 * 4096 - 25_000) * 8) / 200e3);
    const refused = await cli('live', ...SMALL, '--set', 'preempt.enabled=true', '--wire');
    expect([refused.code, refused.out, refused.err]).toEqual([2, '', 'postcopy-emu: preempt.enabled: live --wire paces the main connection, and the preempt connection would go around the wire: leave preempt off with --wire\n']);
  }, 60_000);

  it('refuses what it cannot run yet, naming the field (exit 2, one line)', async () => {
    for (const [args, err] of [
      [['--set', 'migration.mode=hybrid'], 'postcopy-emu: migration.mode: live runs postcopy (got hybrid): precopy and hybrid are the model\'s for now\n'],
      [['--set', 'source.policy=demand'], 'postcopy-emu: source.policy: live needs a background push: demand would leave untouched pages at the source for ever (demand runs with a sequential workload over all of memory)\n'],
      [['--set', 'memory.pages=524288', '--set', 'memory.pageSize=4096', '--set', 'workload.region={start: 0, count: 1024}', '--set', 'mapper.mapping={kind: none}', '--set', 'memory.pages=300000'], 'postcopy-emu: memory.pages: a live guest is at most 1024 MiB (memory.pages × memory.pageSize), got 1171.875 MiB\n'],
      [['--destination', 'nonsense'], 'postcopy-emu: --destination: must be HOST:PORT with a port from 1 to 65535, got "nonsense"\n'],
      [['--destination', '127.0.0.1:1', '--preset', 'xen-2017-pure'], 'postcopy-emu: --destination takes the scenario from the source: give no FILE, --preset, --set, --seed, --listen, --json or --wire\n'],
    ] as const) {
      const r = await cli('live', ...args);
      expect([r.code, r.out, r.err]).toEqual([2, '', err]);
    }
    const refused = await cli('live', '--destination', '127.0.0.1:1');
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/^postcopy-emu: --destination: cannot connect to the source at 127\.0\.0\.1:1: connect ECONNREFUSED/);
  });
});
