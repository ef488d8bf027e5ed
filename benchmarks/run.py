"""Run every benchmark script in this folder (quick sizes); pass --full for the issues' sizes."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in sorted(HERE.glob("*.py")):
        if script.name in (
            "run.py",
            "trsa_evaluation.py",
            "calibration.py",
        ) or script.name.startswith("_"):
            continue
        print(f"\n== {script.name}")
        sys.argv = [str(script), *sys.argv[1:]]
        runpy.run_path(str(script), run_name="__main__")
