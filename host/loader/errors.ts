// Every failure of the loader is a LoaderError whose message reads like a path to the fault,
// outermost first: `count.bpf.o: section "uprobe/x": relocation at 0x18: symbol index 99 out of range`.

export class LoaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoaderError';
  }
}

export function fail(message: string): never {
  throw new LoaderError(message);
}

/**
 * Runs fn and prefixes any error it throws with `context: `. Errors of other types (a bug, or
 * a RangeError from a typed array we missed guarding) are turned into LoaderErrors too, so
 * callers only ever see one error type.
 */
export function withContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof LoaderError) throw new LoaderError(`${context}: ${e.message}`);
    const detail = e instanceof Error ? e.message : String(e);
    throw new LoaderError(`${context}: malformed input (${detail})`);
  }
}

export const hex = (n: number): string => `0x${n.toString(16)}`;
