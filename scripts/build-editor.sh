#!/bin/sh
# Rebuilds hookline/http/static/vendor/codemirror.js, the web UI's workflow editor
# (CodeMirror 6 with YAML), from the versions pinned in scripts/editor/package.json, and
# collects the licences of everything bundled into codemirror.LICENSE.txt. Needs Node.js
# and the npm registry; the server never fetches anything at run time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../hookline/http/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/editor/package.json" "$here/editor/entry.js" "$work/"
cd "$work"
npm install --no-audit --no-fund --silent
mkdir -p "$out"
npx esbuild entry.js --bundle --minify --format=iife --target=es2020 \
    --legal-comments=none --outfile="$out/codemirror.js"
{
    echo "Licences of the packages bundled in codemirror.js (built by scripts/build-editor.sh)."
    for dir in node_modules/codemirror node_modules/@codemirror/* node_modules/@lezer/* \
               node_modules/style-mod node_modules/w3c-keyname node_modules/crelt; do
        [ -d "$dir" ] || continue
        licence=$(ls "$dir" | grep -i -m1 '^licen[cs]e' || true)
        [ -n "$licence" ] || continue
        version=$(node -p "require('./$dir/package.json').version")
        echo
        echo "==== ${dir#node_modules/} $version ===="
        cat "$dir/$licence"
    done
} > "$out/codemirror.LICENSE.txt"
echo "built $out/codemirror.js ($(wc -c < "$out/codemirror.js") bytes)"
