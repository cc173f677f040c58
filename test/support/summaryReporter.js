// CI reads a plain `N passed, N failed[, N skipped]` line; jest's own summary is not in that
// form. Suites that fail to run at all (syntax errors, setup failures) count as failures too;
// skipped (and todo) tests are counted so that a conditional skip shows.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
module.exports = SummaryReporter;
