/**
 * Resolves with `p`'s value, or with undefined after `ms` (the timer does not keep Node
 * alive): cleanup steps must not hang the CLI when Frida or the sidecar does not answer.
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);
}
