// Runs in every fresh context of the code node, before the script (see
// _script_worker.py, which fills in the __UPPER__ names and joins this into one line,
// like _script_stdlib.js: full statements with semicolons, whole-line comments only).
//
// It defines the hooks the worker reads the outcome through (__hl_run, __hl_take and
// __hl_value: fixed,
// not configurable; the lines and the outcome live in this closure, so a script cannot
// forge them), the script's globals from __hl_inputs, and getters that make console
// and load the standard library on first use: QuickJS compiles every function of a
// text it evaluates, so what most scripts never touch is not in this text.
(() => {
  'use strict';
  const g = globalThis;
  const stringify = JSON.stringify;
  const state = {lines: [], dropped: 0};
  const host = {digest: g.__hl_digest, hmac: g.__hl_hmac, random: g.__hl_random, uuid: g.__hl_uuid};
  const stdlib = g.__hl_stdlib;
  const makeConsole = g.__hl_console;
  const inputs = JSON.parse(g.__hl_inputs);
  for (const key of ['__hl_digest', '__hl_hmac', '__hl_random', '__hl_uuid', '__hl_stdlib', '__hl_console', '__hl_inputs']) delete g[key];
  let outcome = null;
  let started = false;
  let loaded = false;
  let made = null;
  let valueText = 'null';
  const load = () => { if (!loaded) { loaded = true; (0, eval)(stdlib)(host); } };
  for (const name of __STDLIB_GLOBALS__) {
    Object.defineProperty(g, name, {
      configurable: true, enumerable: false,
      get() { load(); return g[name]; },
      set(value) { load(); g[name] = value; },
    });
  }
  Object.defineProperty(g, 'console', {get: () => made || (made = (0, eval)(makeConsole)(state, stringify))});
  Object.defineProperty(g, '__hl_run', {value: (fn) => {
    if (started) return;
    started = true;
    fn().then((value) => { outcome = [true, value]; }, (error) => { outcome = [false, error]; });
  }});
  Object.defineProperty(g, '__hl_take', {value: () => {
    const report = {lines: state.lines, dropped: state.dropped};
    if (outcome === null) return stringify(report);
    const [ok, value] = outcome;
    if (ok) {
      try {
        const text = stringify(value);
        if (text !== undefined) valueText = [text].join('');
        report.value = true;
      } catch (e) {
        report.error = {name: 'TypeError', message: 'the result cannot be turned into JSON: ' + e.message};
      }
    } else if (value instanceof Error) {
      report.error = {name: String(value.name), message: String(value.message), stack: String(value.stack || '')};
    } else {
      let shown;
      try { shown = typeof value === 'string' ? value : stringify(value); } catch (e) { shown = undefined; }
      report.error = {thrown: shown === undefined ? String(value) : shown};
    }
    return stringify(report);
  }});
  Object.defineProperty(g, '__hl_value', {value: () => valueText});
  for (const key of Object.keys(inputs)) g[key] = inputs[key];
})();
