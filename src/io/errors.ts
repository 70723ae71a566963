/**
 * Every error the package throws on bad input: a scenario field, a command-line flag, a file, a
 * library argument. `field` names what was wrong (a dotted scenario path, a flag, a file, or
 * `Class.argument`); the message says what is allowed. The CLI prints it as one line, exit 2.
 */
export class PostcopyEmuError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = 'PostcopyEmuError';
  }
}

/** Bad command-line input or a bad input file. */
export class UsageError extends PostcopyEmuError {
  constructor(message: string, field = 'command line') {
    super(field, message);
    this.name = 'UsageError';
  }
}
