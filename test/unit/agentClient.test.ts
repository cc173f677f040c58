// The host's typed agent client (protocol/agentClient.ts). At run time it forwards each
// method with its arguments; at compile time it rejects calls the agent would not accept.
// Jest transpiles without type-checking, so the compile-time half is checked by
// `tsc -p tsconfig.test.json`, which scripts/build.sh runs: were a wrong call below
// accepted, the expect-error directive over it would be unused and the build would fail.

import { agentClient, type AgentClient, type AgentMethod } from '../../protocol/agentClient';
import type { AttachResult, LoadRequest } from '../../protocol/messages';

function recordingClient(answer: unknown = null): { client: AgentClient; calls: [AgentMethod, unknown[]][] } {
  const calls: [AgentMethod, unknown[]][] = [];
  const client = agentClient(async (method, args) => {
    calls.push([method, args]);
    return answer;
  });
  return { client, calls };
}

const request: LoadRequest = { engine: { kind: 'wasm' }, objects: [], links: [], mapInit: [] };

test('each method is sent under its own name with its arguments in order', async () => {
  const { client, calls } = recordingClient();
  await client.ping();
  await client.load(request);
  await client.mapUpdate(1, 2, 'AAAAAA==', 'AQ==', 0);
  await client.symbolize(['0x10']);
  expect(calls).toEqual([
    ['ping', []],
    ['load', [request]],
    ['mapUpdate', [1, 2, 'AAAAAA==', 'AQ==', 0]],
    ['symbolize', [['0x10']]],
  ]);
});

test('the client has every AgentRpc method and nothing else', () => {
  const { client } = recordingClient();
  expect(Object.keys(client).sort()).toEqual(
    ['countHits', 'detachAll', 'hitCounts', 'load', 'mapDelete', 'mapDump', 'mapLookup', 'mapUpdate', 'ping', 'releaseStdio', 'stats', 'symbolize'],
  );
  for (const fn of Object.values(client)) expect(typeof fn).toBe('function');
});

test("the agent's rejection reaches the caller", async () => {
  const client = agentClient(async () => {
    throw new Error('no eBPF objects are loaded');
  });
  await expect(client.mapDump()).rejects.toThrow('no eBPF objects are loaded');
});

test('attach results are told apart by their state alone', () => {
  const results: AttachResult[] = [
    { state: 'attached', target: 'prog → victim:f', where: '0x1000' },
    { state: 'pending', target: 'prog → libx.so:g', waitingFor: 'libx.so' },
    { state: 'failed', target: 'prog', error: 'no such symbol' },
  ];
  const text = results.map((r) => (r.state === 'attached' ? r.where : r.state === 'pending' ? r.waitingFor : r.error));
  expect(text).toEqual(['0x1000', 'libx.so', 'no such symbol']);
});

// Never called: only compiled. Each marked line is a mistake the compiler must refuse.
export function wrongCallsDoNotCompile(agent: AgentClient, result: AttachResult): void {
  // @ts-expect-error a method the agent does not export
  void agent.loadObjects(request);
  // @ts-expect-error load takes a LoadRequest, not its objects
  void agent.load(request.objects);
  // @ts-expect-error a map key is base64 text, not a number
  void agent.mapLookup(0, 0, 1);
  // @ts-expect-error mapUpdate needs its flags
  void agent.mapUpdate(0, 0, 'AA==', 'AA==');
  // @ts-expect-error load answers AttachResult[], not a count
  const attached: Promise<number> = agent.load(request);
  // @ts-expect-error only a failed result has an error; the state must be checked first
  void result.error;
  // @ts-expect-error a pending result names what it waits for, not an address
  if (result.state === 'pending') void result.where;
  // @ts-expect-error the states are attached, pending and failed
  if (result.state === 'ok') void result;
  void attached;
}
