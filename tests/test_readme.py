"""The README's tinycnn example runs as written and learns its toy task."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_example() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## tinycnn in 15 lines", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_and_learns(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 20
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.9, result.stdout
    assert (tmp_path / "toy.npz").exists()
