// The host's side of AgentRpc: every method the agent exports, with the agent's own
// parameter types and its result as a promise. Derived from AgentRpc, so a host call with
// a misspelt method, wrong arguments or a wrong result type does not compile, and a
// method the agent adds or changes is checked at every host call site.

import type { AgentRpc } from './messages.js';

export type AgentMethod = keyof AgentRpc;

export type AgentClient = {
  readonly [M in AgentMethod]: (...args: Parameters<AgentRpc[M]>) => Promise<ReturnType<AgentRpc[M]>>;
};

/** Sends one call to rpc.exports across the process boundary; rejects with the agent's error. */
export type AgentTransport = (method: AgentMethod, args: unknown[]) => Promise<unknown>;

// The method names at run time. A Record over AgentMethod: a method added to AgentRpc and
// missing here (or listed here and gone from AgentRpc) does not compile.
const METHODS: Record<AgentMethod, true> = {
  ping: true,
  countHits: true,
  hitCounts: true,
  load: true,
  mapLookup: true,
  mapUpdate: true,
  mapDelete: true,
  mapDump: true,
  stats: true,
  symbolize: true,
  detachAll: true,
  releaseStdio: true,
};

export function agentClient(transport: AgentTransport): AgentClient {
  const client: Partial<Record<AgentMethod, (...args: unknown[]) => Promise<unknown>>> = {};
  for (const method of Object.keys(METHODS) as AgentMethod[]) client[method] = (...args) => transport(method, args);
  // The transport returns what the agent's method returned (JSON across the boundary):
  // the one place the types are taken on trust, and AgentRpc is what the agent implements.
  return client as AgentClient;
}
