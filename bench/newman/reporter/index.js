'use strict';

// Newman reporter `benchsummary` (--reporters benchsummary): prints nothing
// while the collection runs, then one line of JSON on stdout with the run's
// counters and per-iteration duration percentiles, so the benchmark can
// check every iteration passed without paying for per-request console
// output.

function counter(stats, name) {
    var s = (stats && stats[name]) || {};
    return { total: s.total || 0, failed: s.failed || 0 };
}

function percentile(sorted, p) {
    if (!sorted.length) { return null; }
    var i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    return Math.round(sorted[i] * 1000) / 1000;
}

module.exports = function (newman) {
    var iterationStart = null,
        durations = [];

    newman.on('beforeIteration', function () {
        iterationStart = performance.now();
    });

    newman.on('iteration', function () {
        if (iterationStart !== null) {
            durations.push(performance.now() - iterationStart);
            iterationStart = null;
        }
    });

    newman.on('done', function (err, summary) {
        var run = (summary && summary.run) || {},
            stats = run.stats || {},
            failures = run.failures || [],
            failedIterations = {},
            timings = run.timings || {},
            out;

        failures.forEach(function (f) {
            var it = f && f.cursor && f.cursor.iteration;
            failedIterations[typeof it === 'number' ? it : -1] = true;
        });

        out = {
            benchsummary: 1,
            error: err ? String(err.message || err) : null,
            iterations: counter(stats, 'iterations'),
            requests: counter(stats, 'requests'),
            assertions: counter(stats, 'assertions'),
            test_scripts: counter(stats, 'testScripts'),
            prerequest_scripts: counter(stats, 'prerequestScripts'),
            failures: failures.length,
            failed_iterations: Object.keys(failedIterations).length,
            first_failures: failures.slice(0, 5).map(function (f) {
                return {
                    iteration: f.cursor && f.cursor.iteration,
                    item: f.source && f.source.name,
                    error: f.error && (f.error.test ? f.error.test + ': ' : '') + (f.error.message || String(f.error))
                };
            }),
            started_ms: timings.started || null,
            completed_ms: timings.completed || null,
            iteration_ms: null
        };
        if (durations.length) {
            durations.sort(function (a, b) { return a - b; });
            out.iteration_ms = {
                p50: percentile(durations, 50),
                p95: percentile(durations, 95),
                p99: percentile(durations, 99)
            };
        }
        process.stdout.write(JSON.stringify(out) + '\n');
    });
};
