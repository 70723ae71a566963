import { PostcopyEmuError } from '../io/errors.ts';
import { argCheck, objArg } from '../io/args.ts';
import { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { AdaptiveChunkPush, LazyPagesPush } from './adaptive-chunk.ts';
import { BubblingPush } from './bubbling.ts';
import { DemandOnly, PushOnly, XenPush, type PushPolicy } from './policy.ts';
import { PrefaultPush } from './prefault.ts';

/** The push policy a scenario's `source` section asks for (docs/policies.md). */
export function makePolicy(params: Scenario['source'], unsent: NextMember): PushPolicy {
  objArg('makePolicy.params', params, "a parsed scenario's source section (parseScenario(input).source)");
  argCheck(unsent instanceof NextMember, 'makePolicy.unsent', 'must be a NextMember: the pages not sent yet');
  switch (params.policy) {
    case 'xen':
      return new XenPush(unsent, 'xen', true);
    case 'qemu':
      // QEMU's scan restarts at the requested page, which was just sent: the same order as
      // Xen's last-faulted + 1. What differs is the fault path and the switchover (schema.ts).
      return new XenPush(unsent, 'qemu');
    case 'demand':
      return new DemandOnly();
    case 'bubbling':
      return new BubblingPush(unsent, params.pivots, params.bubbleDirection);
    case 'adaptive-chunk':
      return new AdaptiveChunkPush(unsent, params.chunkMinPages, params.chunkMaxPages);
    case 'prefault':
      return new PrefaultPush(unsent, params.prefaultAfter, params.prefaultBefore);
    case 'push-only':
      return new PushOnly(unsent);
    case 'lazy-pages':
      return new LazyPagesPush(unsent, params.chunkMinPages, params.chunkMaxPages);
  }
  throw new PostcopyEmuError('makePolicy.params.policy', `makePolicy.params.policy: unknown policy "${String(params.policy)}" (\`postcopy-emu fields source.policy\` lists them)`);
}
