import { once } from 'node:events';
import type { Socket } from 'node:net';
import PQueue from 'p-queue';
import { PostcopyEmuError } from '../io/errors.ts';
import { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { makePolicy } from '../source/make-policy.ts';
import { fillPage } from './content.ts';
import { FrameDecoder, FrameType, decodeErrorText, decodeRequest, decodeVerify, encodeFrame, encodeHello, encodePageFrames } from './frame.ts';

/** Pages a background batch sends in one write (QEMU's QEMUFile gathers 64 pages a writev). */
const BATCH_PAGES = 64;
/** Bytes queued in the process beyond the kernel's socket buffer before a write waits for 'drain'. */
const QUEUED_BYTES = 1 << 20;

/** What the source saw, and what the destination reported in VERIFY. */
export interface SourceResult {
  pagesPushed: number;
  pagesDemanded: number;
  requests: number;
  bytesSent: number;
  /** ms from HELLO to the last page written, and to VERIFY read. */
  completeMs: number;
  verifiedMs: number;
  verify: { pagesPresent: number; mismatches: number; stats: Record<string, unknown> };
}

/**
 * The live source (docs/live.md): sends HELLO, then every page of the guest as real bytes
 * (content.ts: a function of seed, gfn and version 0), requested pages first — a p-queue with
 * priorities on the send path, one task per request or per 64-page background batch, each
 * waiting for the socket to drain (back-pressure) — the background in the order of the model's
 * push policy (`source.policy`, src/source/), then COMPLETE, and waits for VERIFY.
 */
export async function runSource(socket: Socket, s: Scenario, clockMs: () => number): Promise<SourceResult> {
  const pages = s.memory.pages, size = s.memory.pageSize;
  // The pages not sent yet; the model's push policies pick the background pages from them.
  const unsent = new NextMember(pages);
  const policy = makePolicy(s.source, unsent);
  const fill = (g: number, out: Uint8Array) => fillPage(s.seed, g, 0, out);
  const queue = new PQueue({ concurrency: 1 });
  const r: SourceResult = { pagesPushed: 0, pagesDemanded: 0, requests: 0, bytesSent: 0, completeMs: -1, verifiedMs: -1, verify: { pagesPresent: 0, mismatches: 0, stats: {} } };
  let count = 0, pushing = true, failure: Error | null = null;
  const t0 = clockMs();

  // Batch buffers go back to a pool once written: fresh memory costs a page fault per 4 KiB.
  const pool: Buffer[] = [];
  const write = async (buf: Buffer, release?: Buffer) => {
    r.bytesSent += buf.length;
    const done = release ? () => pool.push(release) : undefined;
    // Waiting at every write past Node's 16 KiB mark would stall the stream each batch.
    if (!socket.write(buf, done) && socket.writableLength > QUEUED_BYTES) await once(socket, 'drain');
  };
  /** Takes the pages off the unsent set and writes their frames as one buffer. */
  const sendPages = async (gfns: number[]) => {
    for (const g of gfns) unsent.remove(g);
    count += gfns.length;
    if (gfns.length === 0) return;
    const into = pool.pop();
    const frames = encodePageFrames(gfns, 0, size, fill, into);
    await write(frames, frames.buffer === into?.buffer ? into : Buffer.from(frames.buffer, frames.byteOffset, frames.length));
  };
  const finished = async () => {
    if (count < pages || r.completeMs >= 0) return;
    r.completeMs = clockMs() - t0;
    await write(encodeFrame(FrameType.COMPLETE, new Uint8Array(0)));
  };
  const background = async (): Promise<void> => {
    const gfns: number[] = [];
    for (let room = policy.backgroundBudget(BATCH_PAGES); gfns.length < room;) {
      const g = policy.nextBackground();
      if (g < 0) break;
      // Off the set at once, as the model's source does: the policy's next pick must differ.
      unsent.remove(g);
      gfns.push(g);
    }
    policy.backgroundSent(gfns.length);
    r.pagesPushed += gfns.length;
    await sendPages(gfns);
    await finished();
    // A policy that holds back for now is asked again at the next request.
    pushing = gfns.length > 0 && count < pages && !failure;
    if (pushing) void queue.add(background, { priority: 0 });
  };
  const serve = async (gfn: number, n: number): Promise<void> => {
    const gfns: number[] = [];
    for (let g = gfn; g < Math.min(pages, gfn + n); g++) if (unsent.has(g)) gfns.push(g);
    r.pagesDemanded += gfns.length;
    await sendPages(gfns);
    await finished();
  };

  const verified = new Promise<void>((resolve, reject) => {
    const decoder = new FrameDecoder();
    const fail = (e: Error) => {
      failure ??= e;
      queue.clear();
      reject(e);
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.type === FrameType.REQUEST) {
            const { gfn, count: n } = decodeRequest(f.payload, f);
            if (gfn >= pages || n < 1) throw new PostcopyEmuError('frame', `frame ${f.index}: request for pages ${gfn}+${n} outside the guest's ${pages}`);
            r.requests++;
            policy.requested(gfn);
            policy.faulted();
            void queue.add(() => serve(gfn, n), { priority: 1 });
            if (!pushing && count < pages) {
              pushing = true;
              void queue.add(background, { priority: 0 });
            }
          } else if (f.type === FrameType.VERIFY) {
            r.verify = decodeVerify(f.payload, f) as SourceResult['verify'];
            r.verifiedMs = clockMs() - t0;
            resolve();
          } else if (f.type === FrameType.ERROR) {
            throw new PostcopyEmuError('live', `the destination failed: ${decodeErrorText(f.payload)}`);
          }
        }
      } catch (e) {
        fail(e as Error);
      }
    });
    socket.on('error', (e) => fail(new PostcopyEmuError('live', `the connection to the destination failed: ${e.message}`)));
    socket.on('close', () => {
      if (r.verifiedMs < 0) fail(new PostcopyEmuError('live', 'the destination closed the connection before it verified the pages'));
    });
  });

  await write(encodeFrame(FrameType.HELLO, encodeHello({ scenario: s, seed: s.seed })));
  void queue.add(background, { priority: 0 });
  await verified;
  await queue.onIdle();
  return r;
}
