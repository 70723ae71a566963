import { Kernel } from '../kernel/kernel.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import { argCheck, objArg } from './args.ts';

/**
 * The arguments the core's components (Pager, Source, Vcpus, Mapper) take first, checked in one
 * place for a library user who builds one by hand: the run's Kernel and GuestMemory, a parsed
 * scenario, a host object, and the component's own link to the rest (`to`: its name, the value,
 * the class it must be, what that is).
 */
export function checkWiring(
  component: string,
  kernel: unknown,
  memory: unknown,
  scenario: unknown,
  host: unknown,
  to: [field: string, value: unknown, cls: abstract new (...args: never[]) => unknown, what: string],
): void {
  argCheck(kernel instanceof Kernel, `${component}.kernel`, 'must be the run\'s Kernel');
  argCheck(memory instanceof GuestMemory, `${component}.memory`, 'must be the destination\'s GuestMemory');
  objArg(`${component}.scenario`, scenario, 'a parsed scenario (parseScenario(input))');
  objArg(`${component}.host`, host, `the object that hears the ${component}'s events (its Host interface)`);
  argCheck(to[1] instanceof to[2], `${component}.${to[0]}`, `must be ${to[3]}`);
}
