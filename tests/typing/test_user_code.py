"""Code that uses hookline type-checks under ``mypy --strict``: hookline ships
``py.typed``, so mypy reads its annotations as those of an installed package (without
it, mypy cannot use hookline's types at all)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import hookline

HERE = Path(__file__).parent
README = HERE.parent.parent / "README.md"


def mypy_strict(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``files`` from a folder of their own, as a user's project
    would run it: hookline found where it is installed, not as source given to mypy."""
    installed = Path(hookline.__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    # Where hookline is importable from, as its installed location (an editable install
    # is an import hook, which mypy cannot follow).
    env["PYTHONPATH"] = str(installed)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *(file.name for file in files),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_package_says_it_is_typed() -> None:
    assert (Path(hookline.__file__).parent / "py.typed").is_file()


def test_mypy_strict_passes_on_the_readme_example_and_a_custom_node(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    example = tmp_path / "readme_example.py"
    example.write_text(blocks[0])
    custom = tmp_path / "custom_node.py"
    custom.write_text((HERE / "custom_node.py").read_text())
    result = mypy_strict(tmp_path, example, custom)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check is real: a wrong type is caught in the same setting.
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import hookline\n"
        "async def f(engine: hookline.Engine) -> None:\n"
        "    outcome = await engine.run('greet')\n"
        "    status: int = outcome.status\n"
    )
    result = mypy_strict(tmp_path, wrong)
    assert "wrong.py:4: error: Incompatible types in assignment" in result.stdout, result.stdout


def test_the_custom_node_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(HERE / "custom_node.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
