import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALLOWED_ARCS, DeviceFsm, DeviceState, arcCost, isArc, isSaving, nextState, path, type ArcCosts } from '../src/devices/fsm.ts';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { thrown } from './throws.ts';

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = DeviceState;
const ALL = [ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P];
const name = (s: DeviceState) => DeviceState[s];

/**
 * Every request's path, written by hand from vfio.h's arcs and rules (shortest path; a saving
 * state inside a path only when the path stays in the saving group; STOP_COPY → PRE_COPY(_P2P)
 * blocked; ERROR neither left nor entered by request). Checked against vfio_main.c's
 * vfio_from_fsm_table, whose entry is each path's first state. null = illegal.
 */
const EXPECTED: Record<string, Record<string, DeviceState[] | null>> = {
  ERROR: { ERROR: null, STOP: null, RUNNING: null, STOP_COPY: null, RESUMING: null, RUNNING_P2P: null, PRE_COPY: null, PRE_COPY_P2P: null },
  STOP: {
    ERROR: null, STOP: [], RUNNING: [RUNNING_P2P, RUNNING], STOP_COPY: [STOP_COPY], RESUMING: [RESUMING],
    RUNNING_P2P: [RUNNING_P2P], PRE_COPY: [RUNNING_P2P, RUNNING, PRE_COPY], PRE_COPY_P2P: [RUNNING_P2P, PRE_COPY_P2P],
  },
  RUNNING: {
    ERROR: null, STOP: [RUNNING_P2P, STOP], RUNNING: [], STOP_COPY: [RUNNING_P2P, STOP, STOP_COPY], RESUMING: [RUNNING_P2P, STOP, RESUMING],
    RUNNING_P2P: [RUNNING_P2P], PRE_COPY: [PRE_COPY], PRE_COPY_P2P: [RUNNING_P2P, PRE_COPY_P2P],
  },
  STOP_COPY: {
    ERROR: null, STOP: [STOP], RUNNING: [STOP, RUNNING_P2P, RUNNING], STOP_COPY: [], RESUMING: [STOP, RESUMING],
    RUNNING_P2P: [STOP, RUNNING_P2P], PRE_COPY: null, PRE_COPY_P2P: null,
  },
  RESUMING: {
    ERROR: null, STOP: [STOP], RUNNING: [STOP, RUNNING_P2P, RUNNING], STOP_COPY: [STOP, STOP_COPY], RESUMING: [],
    RUNNING_P2P: [STOP, RUNNING_P2P], PRE_COPY: [STOP, RUNNING_P2P, RUNNING, PRE_COPY], PRE_COPY_P2P: [STOP, RUNNING_P2P, PRE_COPY_P2P],
  },
  RUNNING_P2P: {
    ERROR: null, STOP: [STOP], RUNNING: [RUNNING], STOP_COPY: [STOP, STOP_COPY], RESUMING: [STOP, RESUMING],
    RUNNING_P2P: [], PRE_COPY: [RUNNING, PRE_COPY], PRE_COPY_P2P: [PRE_COPY_P2P],
  },
  PRE_COPY: {
    ERROR: null, STOP: [RUNNING, RUNNING_P2P, STOP], RUNNING: [RUNNING], STOP_COPY: [PRE_COPY_P2P, STOP_COPY],
    RESUMING: [RUNNING, RUNNING_P2P, STOP, RESUMING], RUNNING_P2P: [RUNNING, RUNNING_P2P], PRE_COPY: [], PRE_COPY_P2P: [PRE_COPY_P2P],
  },
  PRE_COPY_P2P: {
    ERROR: null, STOP: [RUNNING_P2P, STOP], RUNNING: [RUNNING_P2P, RUNNING], STOP_COPY: [STOP_COPY],
    RESUMING: [RUNNING_P2P, STOP, RESUMING], RUNNING_P2P: [RUNNING_P2P], PRE_COPY: [PRE_COPY], PRE_COPY_P2P: [],
  },
};

const COSTS: ArcCosts = { preCopy: 100_000, quiesce: 1_000_000, stop: 5_000_000, stopCopyEnd: 100_000, resuming: 1_000_000, resume: 1_000_000 };
/** Distinct powers of ten, so a sum shows which groups were charged. */
const MARKED: ArcCosts = { preCopy: 1, quiesce: 10, stop: 100, stopCopyEnd: 1_000, resuming: 10_000, resume: 100_000 };

describe('VFIO migration FSM paths', () => {
  for (const from of ALL) {
    for (const to of ALL) {
      const want = EXPECTED[name(from)]![name(to)]!;
      it(`${name(from)} → ${name(to)}: ${want ? `[${want.map(name).join(', ')}]` : 'illegal'}`, () => {
        if (want === null) {
          const e = thrown(PostcopyEmuError, () => path(from, to));
          expect(e.field).toBe('device.state');
          expect(e.message).toContain(`from ${name(from)} to ${name(to)}`);
          expect(nextState(from, to)).toBe(ERROR);
        } else {
          expect(path(from, to)).toEqual(want);
          expect(nextState(from, to)).toBe(want[0] ?? to);
        }
      });
    }
  }

  it('the allowed arcs are the 15 of vfio.h, each its own one-step path', () => {
    expect(ALLOWED_ARCS).toHaveLength(15);
    for (const [a, b] of ALLOWED_ARCS) expect(path(a, b)).toEqual([b]);
    expect(isArc(STOP_COPY, PRE_COPY)).toBe(false);
    expect(isArc(RUNNING, STOP)).toBe(false);
  });

  it('says why a request is illegal', () => {
    expect(() => path(STOP_COPY, PRE_COPY)).toThrow(/STOP_COPY to PRE_COPY: vfio_mig_get_next_state blocks/);
    expect(() => path(ERROR, RUNNING)).toThrow(/only leaves it by a reset/);
    expect(() => path(RUNNING, ERROR)).toThrow(/entered only by a failed transition/);
    expect(thrown(PostcopyEmuError, () => path(RUNNING, 9 as DeviceState, 'devices.0.state'))).toMatchObject({ field: 'devices.0.state', message: 'devices.0.state: must be an integer in 0..7, got 9' });
    expect(thrown(PostcopyEmuError, () => path(STOP_COPY, PRE_COPY)).message).toMatch(/^device.state: no VFIO migration path from STOP_COPY to PRE_COPY: /);
  });

  it('random sequences of legal requests walk allowed arcs only, a saving state inside a path only within the group', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(...ALL.slice(1)), { maxLength: 40 }), (targets) => {
      const fsm = new DeviceFsm('vf', COSTS);
      let now = 0;
      for (const to of targets) {
        const from = fsm.state;
        if (EXPECTED[name(from)]![name(to)] === null) {
          expect(() => fsm.request(to, now)).toThrow(PostcopyEmuError);
          expect(fsm.state).toBe(from);
          continue;
        }
        const logged = fsm.log.to.length;
        now += fsm.request(to, now) + 1;
        const walked = [from, ...fsm.log.to.slice(logged)];
        expect(fsm.state).toBe(to);
        for (let i = 1; i < walked.length; i++) {
          expect(isArc(walked[i - 1]!, walked[i]!)).toBe(true);
          expect(fsm.log.from[logged + i - 1]).toBe(walked[i - 1]);
        }
        const interior = walked.slice(1, -1);
        // The one exception: PRE_COPY → PRE_COPY_P2P → STOP_COPY never leaves the saving group.
        if (!walked.every(isSaving)) expect(interior.filter(isSaving)).toEqual([]);
      }
      // Arcs are logged in time order.
      expect(fsm.log.at).toEqual([...fsm.log.at].sort((a, b) => a - b));
    }), { seed: 12, numRuns: 300 });
  });
});

describe('arc costs', () => {
  it('maps each arc to its arcNs group', () => {
    expect(arcCost(RUNNING, PRE_COPY, MARKED, 'vf')).toBe(1);
    expect(arcCost(RUNNING, RUNNING_P2P, MARKED, 'vf')).toBe(10);
    expect(arcCost(PRE_COPY, PRE_COPY_P2P, MARKED, 'vf')).toBe(10);
    expect(arcCost(RUNNING_P2P, STOP, MARKED, 'vf')).toBe(100);
    expect(arcCost(PRE_COPY_P2P, STOP_COPY, MARKED, 'vf')).toBe(100);
    expect(arcCost(STOP_COPY, STOP, MARKED, 'vf')).toBe(1_000);
    expect(arcCost(STOP, RESUMING, MARKED, 'vf')).toBe(10_000);
    for (const [a, b] of [[RESUMING, STOP], [STOP, RUNNING_P2P], [RUNNING_P2P, RUNNING], [PRE_COPY, RUNNING], [PRE_COPY_P2P, RUNNING_P2P]] as const) {
      expect(arcCost(a, b, MARKED, 'vf'), `${name(a)} → ${name(b)}`).toBe(100_000);
    }
    // Arcs the spec leaves unnamed take the nearest group.
    expect(arcCost(RUNNING_P2P, PRE_COPY_P2P, MARKED, 'vf')).toBe(1);
    expect(arcCost(STOP, STOP_COPY, MARKED, 'vf')).toBe(1);
    expect(arcCost(PRE_COPY_P2P, PRE_COPY, MARKED, 'vf')).toBe(100_000);
    expect(() => arcCost(RUNNING, STOP, MARKED, 'vf')).toThrow(/not one VFIO migration arc/);
  });

  it('virtio-vf: entering and leaving STOP through P2P is free, nothing else is', () => {
    expect(arcCost(RUNNING_P2P, STOP, MARKED, 'virtio-vf')).toBe(0);
    expect(arcCost(STOP, RUNNING_P2P, MARKED, 'virtio-vf')).toBe(0);
    for (const [a, b] of ALLOWED_ARCS) {
      if ((a === RUNNING_P2P && b === STOP) || (a === STOP && b === RUNNING_P2P)) continue;
      expect(arcCost(a, b, MARKED, 'virtio-vf')).toBe(arcCost(a, b, MARKED, 'vf'));
    }
  });

  it('a request costs the sum of its arcs (hand-checked with the spec defaults)', () => {
    const vf = new DeviceFsm('vf', COSTS);
    expect(vf.request(PRE_COPY, 0)).toBe(100_000); // RUNNING → PRE_COPY
    expect(vf.request(STOP_COPY, 1e6)).toBe(1_000_000 + 5_000_000); // quiesce + stop
    expect(vf.request(STOP, 2e7)).toBe(100_000);
    expect(vf.request(STOP, 3e7)).toBe(0);
    expect(vf.request(RUNNING, 3e7)).toBe(2_000_000); // STOP → RUNNING_P2P → RUNNING: 2 × resume
    expect(new DeviceFsm('vf', COSTS).request(STOP_COPY, 0)).toBe(1_000_000 + 5_000_000 + 100_000); // quiesce, stop, STOP → STOP_COPY
    const dst = new DeviceFsm('vf', COSTS, true, 'device', STOP);
    expect(dst.request(RESUMING, 0)).toBe(1_000_000);
    expect(dst.request(RUNNING, 0)).toBe(3_000_000); // RESUMING → STOP → RUNNING_P2P → RUNNING
    const virtio = new DeviceFsm('virtio-vf', COSTS);
    expect(virtio.request(STOP, 0)).toBe(1_000_000); // quiesce only: RUNNING_P2P → STOP is a no-op
    expect(virtio.request(RUNNING, 0)).toBe(1_000_000); // STOP → RUNNING_P2P free, then resume
  });
});

describe('DeviceFsm', () => {
  it('logs each arc with the time it ends', () => {
    const fsm = new DeviceFsm('vf', COSTS);
    fsm.request(STOP_COPY, 1_000);
    expect(fsm.log).toEqual({
      from: [RUNNING, RUNNING_P2P, STOP],
      to: [RUNNING_P2P, STOP, STOP_COPY],
      at: [1_001_000, 6_001_000, 6_101_000],
    });
  });

  it('fail() → ERROR, where only reset() helps; reset() → RUNNING', () => {
    const fsm = new DeviceFsm('vf', COSTS);
    fsm.request(PRE_COPY, 0);
    fsm.fail(200_000);
    expect(fsm.state).toBe(ERROR);
    const e = thrown(PostcopyEmuError, () => fsm.request(STOP, 600));
    expect(e.field).toBe('device.state');
    expect(fsm.state).toBe(ERROR);
    fsm.reset(300_000);
    expect(fsm.state).toBe(RUNNING);
    expect(fsm.log.to.slice(-2)).toEqual([ERROR, RUNNING]);
    expect(fsm.log.at.slice(-2)).toEqual([200_000, 300_000]);
    expect(fsm.request(STOP, 800)).toBe(6_000_000);
    expect(thrown(PostcopyEmuError, () => fsm.request(RUNNING, -1)).field).toBe('DeviceFsm.request.now');
  });

  it('a device without PRE_COPY refuses PRE_COPY requests, naming its field', () => {
    const fsm = new DeviceFsm('virtio-vf', COSTS, false, 'devices.2');
    const e = thrown(PostcopyEmuError, () => fsm.request(PRE_COPY_P2P, 0));
    expect(e.field).toBe('devices.2.state');
    expect(e.message).toMatch(/VFIO_MIGRATION_PRE_COPY/);
    expect(fsm.request(STOP_COPY, 0)).toBe(1_000_000 + 0 + 100_000);
    expect(thrown(PostcopyEmuError, () => fsm.request(PRE_COPY, 0)).field).toBe('devices.2.state');
  });
});
