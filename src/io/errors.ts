/** Bad command-line input or a bad input file: one line on stderr, exit code 2. */
export class UsageError extends Error {}
