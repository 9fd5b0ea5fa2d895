// The workflow editor page: CodeMirror over the form's text area, the server's check of
// the draft as you type (errors at their lines, the node tree redrawn), and the test run
// panel. No inline script: the strict Content-Security-Policy allows files of /ui/static.
"use strict";

function renderErrors(list, errors) {
  list.replaceChildren();
  for (const error of errors) {
    const item = document.createElement("li");
    item.dataset.line = String(error.line);
    item.textContent = `line ${error.line}: ${error.message}`;
    list.append(item);
  }
}

function startEditor() {
  const form = document.getElementById("editor-form");
  if (!form || !window.HooklineEditor) return;
  const textarea = document.getElementById("editor-text");
  const mount = document.getElementById("editor");
  const errors = document.getElementById("draft-errors");
  const state = document.getElementById("draft-state");
  const tree = document.getElementById("draft-tree");
  const csrf = form.querySelector("input[name=csrf]").value;
  const key = form.dataset.key || "";
  let timer = null;
  let sequence = 0;

  async function check(text) {
    const mine = ++sequence;
    let answer;
    try {
      const response = await fetch(form.dataset.checkUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ text, key }),
        credentials: "same-origin",
      });
      answer = await response.json();
    } catch (failure) {
      return;
    }
    if (mine !== sequence || !answer || !Array.isArray(answer.errors)) return;
    window.HooklineEditor.setErrors(view, answer.errors);
    renderErrors(errors, answer.errors);
    state.textContent = answer.valid ? "valid" : "invalid";
    state.className = `pill ${answer.valid ? "succeeded" : "failed"}`;
    if (answer.valid) {
      tree.innerHTML = answer.tree_html;  // rendered by the server's escaping templates
    }
    tree.classList.toggle("stale", !answer.valid);  // the last tree that loaded, dimmed
    document.body.dataset.draft = answer.valid ? "valid" : "invalid";
  }

  const view = window.HooklineEditor.create(mount, {
    doc: textarea.value,
    onChange(text) {
      textarea.value = text;
      document.body.dataset.draft = "checking";
      clearTimeout(timer);
      timer = setTimeout(() => check(text), 250);
    },
  });
  textarea.hidden = true;
  window.hooklineEditorView = view;  // for tests driving the page
  check(textarea.value);
}

// The test run sends the editor's text as it is now, saved or not.
function startTestRunForm() {
  const form = document.getElementById("test-run-form");
  const source = document.getElementById("editor-text");
  if (!form || !source) return;
  form.addEventListener("submit", () => {
    document.getElementById("test-run-text").value = source.value;
  });
}

document.addEventListener("DOMContentLoaded", startEditor);
document.addEventListener("DOMContentLoaded", startTestRunForm);
