/**
 * The guest of a real run: a 64 KiB flat `-bios` image, generated here so no assembler is needed.
 * It enters flat 32-bit protected mode straight from the reset vector (no SeaBIOS: ~3 s saved),
 * then idles with `cli; hlt`, or rewrites one byte per 4 KiB page of its working set, pass after
 * pass, sequentially or in an LCG order that visits every page once per pass. Before each write it
 * checks the byte against the pass counter, so a page lost or corrupted by the migration stops the
 * guest with the page's address in its state block, where the harness reads it.
 */

import { LCG_A, LCG_C, lcgMask } from '../../workload/lcg.ts';

export const FIRMWARE_BYTES = 0x10000;
/** Guest-physical state block: passes done (u32), address of a bad page (u32, 0 = none), magic. */
export const STATE_ADDR = 0x7000;
export const STATE_MAGIC = 0x4d455043; // "CPEM" little-endian: the firmware reached 32-bit mode
/** The working set starts above the legacy 1 MiB (ROM and VGA holes, the state block). */
export const REGION_BASE = 0x100000;
export const GUEST_PAGE = 4096;
/** Image offset of the parameter block: "PCEMFW01", mode, base, pages, LCG mask (u32 each). */
export const PARAMS_OFFSET = 0x100;
const PARAMS_LINEAR = 0xffff0000 + PARAMS_OFFSET;
const GDT_OFFSET = 0xffc0;
const GDTR_OFFSET = 0xffe0;
const ENTRY16_OFFSET = 0xff00;
export const RESET_OFFSET = 0xfff0;

export const MODES = { idle: 0, sequential: 1, random: 2 } as const;
export type FirmwareMode = keyof typeof MODES;

export interface FirmwareParams {
  mode: FirmwareMode;
  /** Guest-physical address of the working set's first page. */
  base: number;
  pages: number;
}


/** A byte emitter with labels and 8-bit relative jumps, resolved when the code is done. */
class Code {
  readonly bytes: number[] = [];
  private labels = new Map<string, number>();
  private fixups: { at: number; label: string }[] = [];
  constructor(private readonly origin: number) {}
  emit(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  u32(v: number): this {
    return this.emit(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  }
  label(name: string): this {
    this.labels.set(name, this.origin + this.bytes.length);
    return this;
  }
  /** A short jump (EB) or conditional jump (7x) to `label`. */
  jump(opcode: number, label: string): this {
    this.emit(opcode, 0);
    this.fixups.push({ at: this.bytes.length - 1, label });
    return this;
  }
  done(): Uint8Array {
    for (const { at, label } of this.fixups) {
      const rel = this.labels.get(label)! - (this.origin + at + 1);
      if (rel < -128 || rel > 127) throw new Error(`firmware: jump to ${label} out of range`);
      this.bytes[at] = rel & 0xff;
    }
    return Uint8Array.from(this.bytes);
  }
}

const JMP = 0xeb, JE = 0x74, JNE = 0x75, JNZ = 0x75, JAE = 0x73;
const PASSES = STATE_ADDR, BAD = STATE_ADDR + 4, MAGIC = STATE_ADDR + 8;

/** The 32-bit code at offset 0 (linear 0xffff0000). */
function code32(): Uint8Array {
  const c = new Code(0);
  c.emit(0xb8).u32(0x10); // mov eax, 0x10 (flat data selector)
  c.emit(0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0); // mov ds/es/ss, ax
  c.emit(0xc7, 0x05).u32(MAGIC).u32(STATE_MAGIC); // mov dword [MAGIC], STATE_MAGIC
  c.emit(0xa1).u32(PARAMS_LINEAR + 8); // mov eax, [mode]
  c.emit(0x8b, 0x35).u32(PARAMS_LINEAR + 12); // mov esi, [base]
  c.emit(0x8b, 0x0d).u32(PARAMS_LINEAR + 16); // mov ecx, [pages]
  c.emit(0x8b, 0x15).u32(PARAMS_LINEAR + 20); // mov edx, [mask]
  c.emit(0x83, 0xf8, MODES.sequential).jump(JE, 'seq');
  c.emit(0x83, 0xf8, MODES.random).jump(JE, 'rnd');
  c.emit(0xfa).label('halt').emit(0xf4).jump(JMP, 'halt'); // idle: cli; hlt for ever

  // Sequential: bl = the byte every page holds before this pass, bh = what the pass writes.
  c.label('seq').emit(0x31, 0xdb); // xor ebx, ebx
  c.label('seqPass').emit(0x88, 0xdf, 0xfe, 0xc7); // mov bh, bl; inc bh
  c.emit(0x89, 0xf0, 0x89, 0xcd); // mov eax, esi; mov ebp, ecx
  c.label('seqPage').emit(0x38, 0x18).jump(JNE, 'fail'); // cmp [eax], bl; jne fail
  c.emit(0x88, 0x38); // mov [eax], bh
  c.emit(0x05).u32(GUEST_PAGE); // add eax, 4096
  c.emit(0x4d).jump(JNZ, 'seqPage'); // dec ebp; jnz
  c.emit(0xff, 0x05).u32(PASSES).emit(0xfe, 0xc3).jump(JMP, 'seqPass'); // inc [passes]; inc bl

  // Random: edi = LCG state; one pass = 2^k steps, visiting every page < pages exactly once.
  c.label('rnd').emit(0x31, 0xdb, 0x31, 0xff); // xor ebx, ebx; xor edi, edi
  c.label('rndPass').emit(0x88, 0xdf, 0xfe, 0xc7); // mov bh, bl; inc bh
  c.emit(0x89, 0xd5, 0x45); // mov ebp, edx; inc ebp
  c.label('rndStep').emit(0x69, 0xff).u32(LCG_A); // imul edi, edi, A
  c.emit(0x81, 0xc7).u32(LCG_C); // add edi, C
  c.emit(0x21, 0xd7, 0x39, 0xcf).jump(JAE, 'rndNext'); // and edi, edx; cmp edi, ecx; jae
  c.emit(0x89, 0xf8, 0xc1, 0xe0, 12, 0x01, 0xf0); // mov eax, edi; shl eax, 12; add eax, esi
  c.emit(0x38, 0x18).jump(JNE, 'fail').emit(0x88, 0x38); // cmp [eax], bl; jne fail; mov [eax], bh
  c.label('rndNext').emit(0x4d).jump(JNZ, 'rndStep'); // dec ebp; jnz
  c.emit(0xff, 0x05).u32(PASSES).emit(0xfe, 0xc3).jump(JMP, 'rndPass'); // inc [passes]; inc bl

  // A page that does not hold what this pass expects: record its address and stop.
  c.label('fail').emit(0xa3).u32(BAD).emit(0xfa).label('dead').emit(0xf4).jump(JMP, 'dead');
  return c.done();
}

/** Real-mode code at 0xff00: load the GDT, set CR0.PE, far jump to the 32-bit code. */
function code16(): Uint8Array {
  const c = new Code(ENTRY16_OFFSET);
  c.emit(0xfa); // cli
  c.emit(0x66, 0x2e, 0x0f, 0x01, 0x16, GDTR_OFFSET & 0xff, GDTR_OFFSET >> 8); // o32 lgdt cs:[GDTR]
  c.emit(0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0); // mov eax, cr0; or al, 1; mov cr0, eax
  c.emit(0x66, 0xea).u32(0xffff0000).emit(0x08, 0x00); // jmp dword 0x08:0xffff0000
  return c.done();
}

/**
 * Flat 4 GiB code (0x08) and data (0x10) descriptors. Their accessed bits are preset: the CPU
 * would otherwise write them on the first load, into ROM, and the far jump hangs.
 */
const GDT = [
  0, 0, 0, 0, 0, 0, 0, 0,
  0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0,
  0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0,
];

/** The image for `-bios`: mapped below 4 GiB and at 0xf0000, entered at 0xfffffff0. */
export function firmwareImage(p: FirmwareParams): Uint8Array {
  const img = new Uint8Array(FIRMWARE_BYTES).fill(0xf4); // stray jumps land on hlt
  const main = code32();
  if (main.length > PARAMS_OFFSET) throw new Error('firmware: the 32-bit code overlaps its parameters');
  img.set(main, 0);
  const params = new DataView(img.buffer, PARAMS_OFFSET, 24);
  new TextEncoder().encodeInto('PCEMFW01', img.subarray(PARAMS_OFFSET, PARAMS_OFFSET + 8));
  params.setUint32(8, MODES[p.mode], true);
  params.setUint32(12, p.base, true);
  params.setUint32(16, p.pages, true);
  params.setUint32(20, lcgMask(p.pages), true);
  img.set(code16(), ENTRY16_OFFSET);
  img.set(GDT, GDT_OFFSET);
  new DataView(img.buffer).setUint16(GDTR_OFFSET, GDT.length - 1, true);
  new DataView(img.buffer).setUint32(GDTR_OFFSET + 2, 0xffff0000 + GDT_OFFSET, true);
  // Reset vector: jmp near 0xff00.
  const rel = ENTRY16_OFFSET - (RESET_OFFSET + 3);
  img.set([0xe9, rel & 0xff, (rel >> 8) & 0xff], RESET_OFFSET);
  return img;
}
