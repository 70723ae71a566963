import { Command, CommanderError } from 'commander';
import { PostcopyEmuError } from '../io/errors.ts';
import { packageVersion } from '../io/package.ts';
import { registerCompare } from './commands/compare.ts';
import { registerFields, registerSchema } from './commands/fields.ts';
import { registerLive } from './commands/live.ts';
import { registerPresets } from './commands/presets.ts';
import { registerReal } from './commands/real.ts';
import { registerReport } from './commands/report.ts';
import { registerReproduce } from './commands/reproduce.ts';
import { registerRun } from './commands/run.ts';
import { registerSoak } from './commands/soak.ts';
import { registerTrace } from './commands/trace.ts';
import { registerSweep } from './commands/sweep.ts';
import { setQuiet } from './progress.ts';

/** Every message the CLI writes about itself starts with this. */
const PREFIX = 'postcopy-emu: ';

/**
 * The CLI entry point; returns the process exit code (0 ok, 1 invariant violated, 2 bad input).
 * The commands load what they need when they run, so a light command starts in a blink.
 */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  /** The exit code a command asked for (1: a violation or a failed run; 128 + n: stopped by signal n). */
  let failed = 0;
  const cmd = new Command('postcopy-emu')
    .description('Deterministic emulator of postcopy live-migration paging')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-q, --quiet', 'no progress bars')
    .exitOverride()
    .configureOutput({
      writeOut: out,
      writeErr: (s) => process.stderr.write(s),
      // commander's own "error: …" lines get the prefix every other message has.
      outputError: (s, write) => write(s.replace(/^error: /, PREFIX)),
    })
    .hook('preAction', (_: Command, action: Command) => setQuiet(action.optsWithGlobals().quiet === true));
  const fail = (code = 1) => {
    failed = Math.max(failed, code);
  };
  registerRun(cmd, out, fail);
  registerPresets(cmd, out);
  registerFields(cmd, out);
  registerSchema(cmd, out);
  registerTrace(cmd, out);
  registerSweep(cmd, out, fail);
  registerCompare(cmd, out);
  registerReport(cmd, out);
  registerReproduce(cmd, out);
  registerSoak(cmd, out, fail);
  registerReal(cmd, out, fail);
  registerLive(cmd, out, fail);
  try {
    await cmd.parseAsync([...argv]);
    return failed;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof PostcopyEmuError) {
      process.stderr.write(`${PREFIX}${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
