// The workflow editor of hookline's UI: CodeMirror 6 with YAML highlighting and
// server-side errors shown at their lines. Bundled into
// hookline/http/static/vendor/codemirror.js by scripts/build-editor.sh; the page's own
// script (static/editor.js) uses window.HooklineEditor.
import { basicSetup } from "codemirror";
import { EditorView } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { setDiagnostics, lintGutter } from "@codemirror/lint";

// The page's Content-Security-Policy allows no inline <style>: in a shadow root,
// CodeMirror's styles go to a constructed (adopted) style sheet instead.
const theme = EditorView.theme({
  "&": { height: "560px", fontSize: "13px", backgroundColor: "#fff" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" },
});

function create(host, { doc, onChange }) {
  const shadow = host.attachShadow({ mode: "open" });
  const parent = document.createElement("div");
  shadow.append(parent);
  const view = new EditorView({
    parent,
    root: shadow,
    state: EditorState.create({
      doc,
      extensions: [
        basicSetup,
        yaml(),
        lintGutter(),
        theme,
        EditorView.updateListener.of((update) => {
          if (update.docChanged && onChange) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  return view;
}

// errors: [{line, column, message}] with 1-based lines; a line past the end is the last.
function setErrors(view, errors) {
  const doc = view.state.doc;
  const diagnostics = errors.map((error) => {
    const number = Math.min(Math.max(error.line || 1, 1), doc.lines);
    const line = doc.line(number);
    const from = Math.min(line.from + Math.max((error.column || 1) - 1, 0), line.to);
    return { from, to: line.to, severity: "error", message: error.message };
  });
  view.dispatch(setDiagnostics(view.state, diagnostics));
}

function getText(view) {
  return view.state.doc.toString();
}

window.HooklineEditor = { create, setErrors, getText };
