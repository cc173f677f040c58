// A CModule's constants come from their one TypeScript definition: the TS that creates the
// module prepends them as #defines (the .c files under agent/cmodules name what they need).

/** `#define NAME value` lines for integer constants. */
export function cDefines(values: Readonly<Record<string, number>>): string {
  return Object.entries(values)
    .map(([name, value]) => {
      if (!Number.isInteger(value)) throw new Error(`cDefines: ${name} is not an integer (${value})`);
      return `#define ${name} ${value}\n`;
    })
    .join('');
}
