// The code node's console, made by _script_runner.js on a script's first use of it:
// a function of the runner's state (lines kept, lines dropped) and JSON.stringify as
// it was before the script ran. Same rules as the runner: one line, semicolons.
((state, stringify) => {
  'use strict';
  const show = (value) => {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return value.name + ': ' + value.message;
    try { const text = stringify(value); return text === undefined ? String(value) : text; }
    catch (e) { return String(value); }
  };
  const write = (prefix) => (...args) => {
    if (state.lines.length >= __MAX_LINES__) { state.dropped += 1; return; }
    let line = prefix;
    for (let i = 0; i < args.length; i++) line += (i ? ' ' : '') + show(args[i]);
    state.lines[state.lines.length] = line.length > __MAX_LINE__ ? line.slice(0, __MAX_LINE__) + '...' : line;
  };
  return Object.freeze({log: write(''), info: write(''), debug: write(''), warn: write('warn: '), error: write('error: ')});
})
