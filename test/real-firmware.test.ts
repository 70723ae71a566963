import { describe, expect, it } from 'vitest';
import { FIRMWARE_BYTES, PARAMS_OFFSET, RESET_OFFSET, firmwareImage } from '../src/live/qemu/firmware.ts';
import { lcgMask, lcgNext } from '../src/workload/lcg.ts';

const u32 = (img: Uint8Array, at: number) => new DataView(img.buffer).getUint32(at, true);
const hex = (img: Uint8Array, from: number, n: number) => Buffer.from(img.subarray(from, from + n)).toString('hex');

describe('real-run firmware image', () => {
  const img = firmwareImage({ mode: 'random', base: 0x100000, pages: 65536 });

  it('is a 64 KiB -bios image whose reset vector jumps to the real-mode entry at 0xff00', () => {
    expect(img.length).toBe(FIRMWARE_BYTES);
    // jmp near rel16: 0xfff3 + 0xff0d = 0xff00 (mod 64 Ki)
    expect(hex(img, RESET_OFFSET, 3)).toBe('e90dff');
    // cli; o32 lgdt cs:[0xffe0]; mov eax,cr0; or al,1; mov cr0,eax; jmp dword 0x08:0xffff0000
    expect(hex(img, 0xff00, 24)).toBe('fa662e0f0116e0ff0f20c00c010f22c066ea0000ffff0800');
  });

  it('has a flat GDT in ROM with the accessed bits preset (0x9b code, 0x93 data)', () => {
    expect(hex(img, 0xffc0, 24)).toBe('0000000000000000' + 'ffff0000009bcf00' + 'ffff00000093cf00');
    expect(hex(img, 0xffe0, 6)).toBe('1700c0ffffff'); // limit 23, base 0xffffffc0
  });

  it('holds the page loop parameters in its parameter block', () => {
    expect(Buffer.from(img.subarray(PARAMS_OFFSET, PARAMS_OFFSET + 8)).toString('latin1')).toBe('PCEMFW01');
    expect([u32(img, PARAMS_OFFSET + 8), u32(img, PARAMS_OFFSET + 12), u32(img, PARAMS_OFFSET + 16), u32(img, PARAMS_OFFSET + 20)])
      .toEqual([2, 0x100000, 65536, 65535]);
    const seq = firmwareImage({ mode: 'sequential', base: 0x200000, pages: 1000 });
    expect([u32(seq, PARAMS_OFFSET + 8), u32(seq, PARAMS_OFFSET + 12), u32(seq, PARAMS_OFFSET + 16), u32(seq, PARAMS_OFFSET + 20)])
      .toEqual([1, 0x200000, 1000, 1023]);
    expect(u32(firmwareImage({ mode: 'idle', base: 0x100000, pages: 1 }), PARAMS_OFFSET + 8)).toBe(0);
  });

  it('starts its 32-bit code by loading the data selector and reading the parameters it was given', () => {
    // mov eax, 0x10; mov ds/es/ss, ax; movl $magic, 0x7008; mov eax, [0xffff0108]
    expect(hex(img, 0, 26)).toBe('b810000000' + '8ed88ec08ed0' + 'c705087000004350454d' + 'a10801ffff');
    expect(hex(img, 0x1a, 6)).toBe('8b350c01ffff'); // mov esi, [base]
  });

  it('walks every page exactly once per pass in its random order (full-period LCG, skipping ≥ pages)', () => {
    for (const pages of [1, 7, 1000, 4096]) {
      const mask = lcgMask(pages);
      const seen = new Uint8Array(pages);
      let x = 0;
      for (let step = 0; step <= mask; step++) {
        x = ((Math.imul(x, 1103515245) + 12345) >>> 0) & mask;
        if (x < pages) seen[x]!++;
      }
      expect(seen.every((n) => n === 1)).toBe(true);
    }
    expect([lcgMask(1), lcgMask(2), lcgMask(3), lcgMask(65536), lcgMask(65537)]).toEqual([0, 1, 3, 65535, 131071]);
  });

  it('lcgNext walks the firmware\'s order: the model\'s shuffled guest visits the pages the real one does', () => {
    const pages = 1000, mask = lcgMask(pages);
    const order: number[] = [];
    let x = 0, fw = 0;
    for (let step = 0; step <= mask; step++) {
      fw = ((Math.imul(fw, 1103515245) + 12345) >>> 0) & mask;
      if (fw < pages) order.push(fw);
    }
    const walked = order.map(() => (x = lcgNext(x, mask, pages)));
    expect(walked).toEqual(order);
    expect(walked.slice(0, 4)).toEqual([57, 638, 991, 44]);
  });
});
