// Bounds of the time values a user gives (CLI options and the manifest share them). Node's
// timers hold at most 2^31-1 ms (~24.8 days) and fire at once beyond it, and a print every
// nanosecond is a typo, not a wish.

/** --interval / output.interval: seconds between map prints. */
export const MIN_INTERVAL_S = 0.01;
export const MAX_INTERVAL_S = 86_400;
/** --duration: seconds before the detach. */
export const MAX_DURATION_S = 2_147_483;
