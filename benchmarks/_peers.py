"""The peer: Node-RED 4.x with an ``http in -> function -> http response`` flow.

Installed on demand from the npm registry into ``benchmarks/.peers/node-red``
(git-ignored) with the machine's Node.js; the scenario skips with a clear message
where ``node`` or ``npm`` is missing, or (in ``--quick`` runs, which never install
anything) where Node-RED is not installed yet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ._spec import HERE, Skip

__all__ = ["NODE_RED_DIR", "NODE_RED_SPEC", "install_node_red", "node_red_server"]

NODE_RED_DIR = HERE / ".peers" / "node-red"
NODE_RED_SPEC = "node-red@4"
_RED_JS = NODE_RED_DIR / "node_modules" / "node-red" / "red.js"
_INSTALL_TIMEOUT = 600.0

# The same answer as the baselines: 202 with a small JSON body.
_FUNCTION = (
    "msg.statusCode = 202;\n"
    'msg.headers = {"content-type": "application/json"};\n'
    'msg.payload = {execution_id: "0", status: "queued"};\n'
    "return msg;"
)
FLOW = [
    {"id": "bench-tab", "type": "tab", "label": "bench"},
    {
        "id": "bench-in",
        "type": "http in",
        "z": "bench-tab",
        "url": "/hook",
        "method": "post",
        "upload": False,
        "wires": [["bench-fn"]],
    },
    {
        "id": "bench-fn",
        "type": "function",
        "z": "bench-tab",
        "name": "answer",
        "func": _FUNCTION,
        "outputs": 1,
        "wires": [["bench-out"]],
    },
    {"id": "bench-out", "type": "http response", "z": "bench-tab", "headers": {}, "wires": []},
]

# No editor, no admin API, warnings only: the flow alone, as hookline serves its routes.
_SETTINGS = """\
module.exports = {
    flowFile: "flows.json",
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    httpNodeRoot: "/",
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
"""


def node_version() -> str | None:
    """``node --version`` (``v20.x``), or None when Node.js is missing."""
    node = shutil.which("node")
    if node is None:
        return None
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def node_red_version() -> str | None:
    """The installed Node-RED's version, or None."""
    package = NODE_RED_DIR / "node_modules" / "node-red" / "package.json"
    try:
        version = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(version)


def install_node_red() -> None:
    """Install Node-RED 4.x with npm unless it is there. Raises :class:`Skip`."""
    if _RED_JS.exists():
        return
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise Skip("Node.js or npm is missing: install Node.js 20 to measure Node-RED")
    NODE_RED_DIR.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(NODE_RED_DIR), "--no-audit", "--no-fund"]
    argv += ["--loglevel=error", NODE_RED_SPEC]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=_INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise Skip(f"`npm install {NODE_RED_SPEC}` took over {_INSTALL_TIMEOUT:.0f} s") from exc
    if done.returncode != 0 or not _RED_JS.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise Skip(f"`npm install {NODE_RED_SPEC}` failed: " + " / ".join(tail))


def node_red_server(port: int, folder: Path, quick: bool) -> list[str]:
    """The scenario command: install if needed (never in quick runs), write the flow
    and settings into ``folder``, return the ``node red.js`` argv."""
    node = shutil.which("node")
    if node is None:
        raise Skip("Node.js is missing: install Node.js 20 to measure Node-RED")
    if quick and not _RED_JS.exists():
        raise Skip(
            "Node-RED is not installed and --quick installs nothing: run "
            "`python -m benchmarks node-red` once"
        )
    install_node_red()
    (folder / "flows.json").write_text(json.dumps(FLOW, indent=1))
    (folder / "settings.js").write_text(_SETTINGS)
    return [
        node,
        str(_RED_JS),
        "--port",
        str(port),
        "--userDir",
        str(folder),
        "--settings",
        str(folder / "settings.js"),
        "flows.json",
    ]
