// Runs in every fresh context of the code node, before the script (see
// _script_worker.py, which fills in the __UPPER__ names and joins this into one line,
// like _script_stdlib.js: full statements with semicolons, whole-line comments only).
//
// It defines console (lines kept in this closure, so a script cannot forge them), the
// hooks the worker reads the outcome through (__hl_run, __hl_state, __hl_value,
// __hl_error, __hl_lines: fixed, not configurable), the script's globals from
// __hl_inputs, and the standard library's globals as getters that load it on first use.
(() => {
  'use strict';
  const stringify = JSON.stringify;
  const lines = [];
  let dropped = 0;
  let outcome = null;
  let started = false;
  const show = (value) => {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return String(value.stack ? value.name + ': ' + value.message : value);
    try { const text = stringify(value); return text === undefined ? String(value) : text; }
    catch (e) { return String(value); }
  };
  const write = (prefix) => (...args) => {
    if (lines.length >= __MAX_LINES__) { dropped += 1; return; }
    let line = prefix;
    for (let i = 0; i < args.length; i++) line += (i ? ' ' : '') + show(args[i]);
    lines[lines.length] = line.length > __MAX_LINE__ ? line.slice(0, __MAX_LINE__) + '...' : line;
  };
  const describe = (error) => {
    if (error instanceof Error) {
      return {name: String(error.name), message: String(error.message), stack: String(error.stack || '')};
    }
    return {thrown: show(error)};
  };
  const define = (name, value) => Object.defineProperty(
    globalThis, name, {value, writable: false, enumerable: false, configurable: false});
  define('console', Object.freeze({
    log: write(''), info: write(''), debug: write(''), warn: write('warn: '), error: write('error: '),
  }));
  define('__hl_run', (fn) => {
    if (started) return;
    started = true;
    fn().then((value) => {
      try {
        const text = stringify(value);
        outcome = {value: text === undefined ? 'null' : text};
      } catch (e) {
        outcome = {error: {name: 'TypeError', message: 'the result cannot be turned into JSON: ' + e.message}};
      }
    }, (e) => { outcome = {error: describe(e)}; });
  });
  define('__hl_state', () => outcome === null ? 'pending' : 'value' in outcome ? 'value' : 'error');
  define('__hl_value', () => [outcome.value].join(''));
  define('__hl_error', () => stringify(outcome.error));
  define('__hl_lines', () => stringify({lines, dropped}));
  const host = {
    digest: globalThis.__hl_digest, hmac: globalThis.__hl_hmac,
    random: globalThis.__hl_random, uuid: globalThis.__hl_uuid,
  };
  const stdlib = globalThis.__hl_stdlib;
  const inputs = JSON.parse(globalThis.__hl_inputs);
  for (const key of ['__hl_digest', '__hl_hmac', '__hl_random', '__hl_uuid', '__hl_stdlib', '__hl_inputs']) {
    delete globalThis[key];
  }
  let loaded = false;
  const load = () => { if (!loaded) { loaded = true; (0, eval)(stdlib)(host); } };
  for (const name of __STDLIB_GLOBALS__) {
    Object.defineProperty(globalThis, name, {
      configurable: true, enumerable: false,
      get() { load(); return globalThis[name]; },
      set(value) { load(); globalThis[name] = value; },
    });
  }
  for (const key of Object.keys(inputs)) globalThis[key] = inputs[key];
})();
