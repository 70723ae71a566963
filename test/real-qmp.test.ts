import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RealRunError } from '../src/live/qemu/errors.ts';
import { Qmp, QmpCommandError } from '../src/live/qemu/qmp.ts';

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' }, capabilities: [] } };
const EVENT = { timestamp: { seconds: 1700000000, microseconds: 123456 }, event: 'MIGRATION', data: { status: 'setup' } };

/** A fake QEMU: greets, answers like QMP, and records what it was sent. */
function fakeQmp(path: string, received: unknown[]): Promise<Server> {
  const server = createServer((s: Socket) => {
    const send = (o: unknown) => s.write(`${JSON.stringify(o)}\r\n`);
    send(GREETING);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string; arguments?: unknown };
        received.push(msg);
        if (msg.execute === 'qmp_capabilities') send({ return: {}, id: msg.id });
        else if (msg.execute === 'query-migrate') {
          send(EVENT); // an event may come before the reply
          send({ return: { status: 'active', ram: { transferred: 4096 } }, id: msg.id });
        } else if (msg.execute === 'migrate-start-postcopy') send({ error: { class: 'GenericError', desc: 'Postcopy must be started after migration has been started' }, id: msg.id });
        else if (msg.execute === 'quit') s.destroy();
        // 'hang' gets no reply.
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

describe('QMP client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pce-qmp-'));
  let server: Server | null = null;
  afterEach(() => {
    server?.close();
    server = null;
  });
  afterEach(() => rmSync(join(dir, 'q.sock'), { force: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the greeting, enters command mode, runs a command and collects an event with its timestamp', async () => {
    const received: unknown[] = [];
    server = await fakeQmp(join(dir, 'q.sock'), received);
    const q = await Qmp.connect(join(dir, 'q.sock'), 'test', 2000);
    expect(await q.execute('query-migrate')).toEqual({ status: 'active', ram: { transferred: 4096 } });
    expect(q.events).toEqual([{ event: 'MIGRATION', data: { status: 'setup' }, atUs: 1700000000123456 }]);
    expect(await q.waitEvent((e) => e.event === 'MIGRATION', 'MIGRATION', 100)).toEqual(q.events[0]);
    expect(received).toEqual([{ execute: 'qmp_capabilities', id: 'pce-0' }, { execute: 'query-migrate', id: 'pce-1' }]);
    q.close();
  });

  it('turns a refusal into QmpCommandError with QEMU\'s description', async () => {
    server = await fakeQmp(join(dir, 'q.sock'), []);
    const q = await Qmp.connect(join(dir, 'q.sock'), 'test', 2000);
    const e = await q.execute('migrate-start-postcopy').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QmpCommandError);
    expect((e as QmpCommandError).desc).toBe('Postcopy must be started after migration has been started');
    q.close();
  });

  it('times out a command QEMU never answers, and an event that never comes', async () => {
    server = await fakeQmp(join(dir, 'q.sock'), []);
    const q = await Qmp.connect(join(dir, 'q.sock'), 'test', 2000);
    await expect(q.execute('hang', {}, 50)).rejects.toThrow(new RealRunError('QMP test: no reply to hang in 50 ms'));
    await expect(q.waitEvent((e) => e.event === 'RESUME', 'RESUME event', 50)).rejects.toThrow('QMP test: no RESUME event in 50 ms');
    q.close();
  });

  it('gives up on a socket that never appears, and fails pending commands when QEMU goes away', async () => {
    await expect(Qmp.connect(join(dir, 'none.sock'), 'test', 50)).rejects.toThrow(/^QMP test: no socket at .*none\.sock after 50 ms$/);
    await expect(Qmp.connect(join(dir, 'none.sock'), 'test', 5000, () => false)).rejects.toThrow(/QEMU exited before it opened/);
    server = await fakeQmp(join(dir, 'q.sock'), []);
    const q = await Qmp.connect(join(dir, 'q.sock'), 'test', 2000);
    const pending = q.execute('hang', {}, 5000);
    await expect(q.execute('quit', {}, 5000)).rejects.toThrow('QMP test: connection closed by QEMU');
    await expect(pending).rejects.toThrow('QMP test: connection closed by QEMU');
    await expect(q.execute('query-migrate')).rejects.toThrow('QMP test: connection closed by QEMU');
  });
});
