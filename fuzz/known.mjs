// Defects the fuzzer finds on main today whose fixes are under way (issue 22). While a defect is `open`
// the fuzzer does not generate the cases it explains (so CI stays green and finds what is new), and its
// example is skipped; when its fix lands, set `open: false`: the cases come back and the example (the
// fuzzer's shrunk case for it) runs in every `npm test` as a regression test.
// `npm run fuzz -- --known` runs the examples of the open ones and says which still reproduce.

/** The values String() cannot convert (the default exception handler and _fatalError call String()). */
const UNPRINTABLE = new Set(['nullproto', 'revoked', 'throwingToString', 'throwingGetter']);
const unprintable = (d) => Array.isArray(d) && UNPRINTABLE.has(d[0]);
const throwsUnprintable = (c) => c.behaviours?.some((b) => b.then[0] === 'throw' && unprintable(b.then[1]));

export const KNOWN = [
  {
    id: 'repro-03/04/06: unprintable thrown value',
    open: true,
    what: 'a protocol callback throws a value String() cannot convert: the library throws inside its error path (crash from the held-events path, no exit after connectionLost, no close after connectionMade)',
    excludes: (scenario, c) => throwsUnprintable(c) || (c.handler === 'throwing' && unprintable(c.handlerThrows) && c.behaviours?.some((b) => b.then[0] === 'throw')),
    example: {
      scenario: 'stream',
      case: { peer: 'node-server', kind: 'plain', shape: 'class', handler: 'default', bufferSpec: ['u8', 1], behaviours: [{ cb: 'connectionLost', nth: 0, ops: [], then: ['throw', ['nullproto']] }], steps: [] },
    },
  },
];

/** The open known defect that explains case `c` of `scenario`, or null. */
export function excludedBy(scenario, c) {
  for (const k of KNOWN) if (k.open && k.excludes(scenario, c)) return k.id;
  return null;
}
