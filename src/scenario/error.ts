import { PostcopyEmuError } from '../io/errors.ts';

/** A scenario that cannot run: `path` is the dotted field, `message` says what is allowed. */
export class ScenarioError extends PostcopyEmuError {
  constructor(readonly path: string, readonly detail: string) {
    super(path, `${path || '(scenario)'}: ${detail}`);
    this.name = 'ScenarioError';
  }
}
