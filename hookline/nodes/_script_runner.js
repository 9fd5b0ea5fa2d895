// Runs in every fresh context of the code node, before the script (see
// _script_worker.py, which fills in the __UPPER__ names and joins this into one line,
// like _script_stdlib.js: full statements with semicolons, whole-line comments only).
//
// It defines __hl_run (fixed, not configurable), which the script's text calls with
// the script as an async function, and getters that make console and load the
// standard library on first use. QuickJS compiles every function of a text it
// evaluates, and this text is compiled for every run: what most runs never need (the
// standard library, console, the report of a thrown value) is in other texts, compiled
// when first used. Its value is the worker's control, held by the worker only: called
// with the globals' JSON text, it sets them; called with nothing once the script has
// run, it gives the report as JSON, then (when there is one) a newline and the
// result's JSON. The lines and the outcome live in this closure: a script cannot
// forge them.
(() => {
  'use strict';
  const g = globalThis;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const keys = Object.keys;
  const define = Object.defineProperty;
  const evaluate = g.eval;
  // Taken now: the script may replace them on the prototypes.
  const apply = Reflect.apply;
  const then = Promise.prototype.then;
  const join = Array.prototype.join;
  const host = {digest: g.__hl_digest, hmac: g.__hl_hmac, random: g.__hl_random, uuid: g.__hl_uuid};
  const texts = {stdlib: g.__hl_stdlib, console: g.__hl_console, thrown: g.__hl_thrown};
  for (const key of ['__hl_digest', '__hl_hmac', '__hl_random', '__hl_uuid', '__hl_stdlib', '__hl_console', '__hl_thrown']) delete g[key];
  const state = {lines: [], dropped: 0, outcome: null, console: null, loaded: false};
  const load = () => { if (!state.loaded) { state.loaded = true; evaluate(texts.stdlib)(host); } };
  for (const name of __STDLIB_GLOBALS__) {
    define(g, name, {configurable: true, enumerable: false, get() { load(); return g[name]; }, set(value) { load(); g[name] = value; }});
  }
  define(g, 'console', {get: () => state.console || (state.console = evaluate(texts.console)(state, stringify))});
  define(g, '__hl_run', {value: (fn) => {
    if (state.outcome !== null) return;
    state.outcome = false;
    apply(then, fn(), [(value) => { state.outcome = [true, value]; }, (error) => { state.outcome = [false, error]; }]);
  }});
  return (inputs) => {
    if (inputs !== undefined) {
      // Put there when the runner is loaded from bytecode (see _runner_loader).
      delete g.__hl_control;
      const values = parse(inputs);
      for (const key of keys(values)) g[key] = values[key];
      return;
    }
    const report = {__proto__: null, lines: state.lines, dropped: state.dropped};
    const outcome = state.outcome;
    if (!outcome) return stringify(report);
    if (!outcome[0]) {
      report.error = evaluate(texts.thrown)(outcome[1], stringify);
      return stringify(report);
    }
    let text;
    try {
      text = stringify(outcome[1]);
    } catch (e) {
      report.error = {name: 'TypeError', message: 'the result cannot be turned into JSON: ' + e.message};
      return stringify(report);
    }
    report.value = text !== undefined;
    // Joined, not added: QuickJS's binding cannot hand a concatenation (a rope) back.
    return report.value ? apply(join, [stringify(report), text], ['\n']) : stringify(report);
  };
})();
