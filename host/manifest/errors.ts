// A manifest problem is the user's to fix: one line naming the file, the JSON path and what
// was expected. The CLI prints `message` and nothing else (no stack).

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** `file: /json/path: what` — the one spelling every manifest error uses. */
export function manifestError(where: string, path: string, what: string): ManifestError {
  return new ManifestError(path ? `${where}: ${path}: ${what}` : `${where}: ${what}`);
}

/** JSON Pointer escaping for keys that contain `/` or `~` (program names never do, map names might). */
export function pointerKey(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
