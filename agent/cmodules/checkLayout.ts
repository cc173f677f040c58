// The TypeScript side of a CModule writes and reads its structs at offsets it keeps in a
// table; a struct changed in C and not in the table would corrupt memory in the target
// silently. Each C module therefore exports `<name>_layout(guint32 *out)`: out[0] is the
// number of words that follow, then its sizes and offsets in the order the TS table lists
// them. checkLayout compares the two when the module is made and refuses a mismatch.

const MAX_WORDS = 64;

/** Every expected entry, in the C function's order: [what it is, the value TS relies on]. */
export type ExpectedLayout = readonly (readonly [string, number])[];

export class LayoutMismatch extends Error {}

export function checkLayout(cm: CModule, fn: string, expected: ExpectedLayout): void {
  const symbol = cm[fn];
  if (symbol === undefined) throw new LayoutMismatch(`CModule exports no ${fn}: its layout cannot be checked`);
  const out = Memory.alloc(4 * (MAX_WORDS + 1));
  new NativeFunction(symbol, 'void', ['pointer'])(out);
  const count = out.readU32();
  if (count !== expected.length) {
    throw new LayoutMismatch(`${fn}: C reports ${count} layout entries, TypeScript expects ${expected.length} (${expected.map((e) => e[0]).join(', ')})`);
  }
  const wrong: string[] = [];
  expected.forEach(([what, value], i) => {
    const c = out.add(4 * (i + 1)).readU32();
    if (c !== value) wrong.push(`${what} is ${c} in C, ${value} in TypeScript`);
  });
  if (wrong.length) throw new LayoutMismatch(`${fn}: ${wrong.join('; ')}`);
}
