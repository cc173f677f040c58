// `spawn`, `attach` and `run` once their plan is built: the run itself lives in
// host/session/runSession.ts and says how it ended; this turns that into our exit status.

import type { RunPlan } from '../session/runPlan';
import { runSession } from '../session/runSession';
import { exitCodeFor } from './exitCodes';

// buildPlan.ts names the plan's types from here, the CLI's side of the run.
export type { OutputOptions, RunPlan } from '../session/runPlan';

export async function runTarget(plan: RunPlan): Promise<number> {
  return exitCodeFor(await runSession(plan));
}
