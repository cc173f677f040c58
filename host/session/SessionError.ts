/** What went wrong, in the user's terms; `kind` picks the CLI exit status. */
export class SessionError extends Error {
  constructor(
    message: string,
    readonly kind: 'usage' | 'attach' | 'lost',
  ) {
    super(message);
    this.name = 'SessionError';
  }
}
