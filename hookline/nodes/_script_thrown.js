// What a script threw, as the worker reports it: made by _script_runner.js only when a
// script fails (a function of the thrown value and JSON.stringify as it was before the
// script ran). Same rules as the runner: one line, semicolons.
((value, stringify) => {
  'use strict';
  if (value instanceof Error) {
    return {name: String(value.name), message: String(value.message), stack: String(value.stack || '')};
  }
  let shown;
  try { shown = typeof value === 'string' ? value : stringify(value); } catch (e) { shown = undefined; }
  return {thrown: shown === undefined ? String(value) : shown};
})
