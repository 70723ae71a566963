import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PrereqError } from './errors.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';
const INSTALL = 'install it with `apt-get install qemu-system-x86`';

export type Accel = 'kvm' | 'tcg';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The QEMU binary: `--qemu PATH` when given, else qemu-system-x86_64 on PATH. */
export function findQemu(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (given !== undefined) {
    if (!executable(given)) throw new PrereqError('--qemu', `--qemu ${given}: no executable file there; give the path of ${QEMU_BINARY}, or ${INSTALL}`);
    return given;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, QEMU_BINARY))) return join(dir, QEMU_BINARY);
  }
  throw new PrereqError('qemu', `${QEMU_BINARY} is not on PATH: ${INSTALL}, or name it with --qemu PATH`);
}

/** "7.2.22" from `qemu-system-x86_64 --version`. */
export function qemuVersion(qemu: string): string {
  let text: string;
  try {
    text = execFileSync(qemu, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new PrereqError('qemu', `${qemu} --version failed (${(e as Error).message.split('\n')[0]}): ${INSTALL}`);
  }
  const m = /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(text);
  if (!m) throw new PrereqError('qemu', `${qemu} does not say it is QEMU (--version printed "${text.split('\n')[0]}"): ${INSTALL}`);
  return m[1]!;
}

/**
 * KVM must open read-write; TCG (`--accel tcg`) needs nothing but is slower, so its timings
 * are not those of a KVM guest and it must be asked for.
 */
export function checkAccel(accel: Accel, kvmPath = '/dev/kvm'): void {
  if (accel === 'tcg') return;
  try {
    accessSync(kvmPath, constants.R_OK | constants.W_OK);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not usable by this user';
    throw new PrereqError('kvm', `${kvmPath} ${why}: real runs need KVM (load kvm_intel or kvm_amd, or add this user to group kvm), or pass --accel tcg to emulate the CPU (slower, not KVM timings)`);
  }
}

/**
 * Postcopy needs userfaultfd: as root, or with vm.unprivileged_userfaultfd=1, or with access to
 * /dev/userfaultfd. (QEMU's own refusal of postcopy-ram is reported the same way.)
 */
export function checkUserfaultfd(uid = process.getuid?.() ?? 0, root = ''): void {
  if (uid === 0) return;
  try {
    if (readFileSync(`${root}/proc/sys/vm/unprivileged_userfaultfd`, 'utf8').trim() === '1') return;
  } catch {
    // An older kernel without the knob: /dev/userfaultfd below, or nothing.
  }
  try {
    accessSync(`${root}/dev/userfaultfd`, constants.R_OK | constants.W_OK);
    return;
  } catch {
    throw new PrereqError('userfaultfd', USERFAULTFD_MISSING);
  }
}

export const USERFAULTFD_MISSING = 'userfaultfd is not available to this user and postcopy needs it: run as root, or `sysctl vm.unprivileged_userfaultfd=1`, or grant access to /dev/userfaultfd';
