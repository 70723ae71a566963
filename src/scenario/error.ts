/** A scenario that cannot run: `path` is the dotted field, `message` says what is allowed. */
export class ScenarioError extends Error {
  constructor(readonly path: string, readonly detail: string) {
    super(`${path || '(scenario)'}: ${detail}`);
    this.name = 'ScenarioError';
  }
}
