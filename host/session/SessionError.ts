/** What went wrong, in the user's terms; `kind` picks the CLI exit status (host/cli/exitCodes.ts, exitCodeFor). */
export class SessionError extends Error {
  constructor(
    message: string,
    readonly kind: 'usage' | 'attach' | 'lost',
  ) {
    super(message);
    this.name = 'SessionError';
  }
}
