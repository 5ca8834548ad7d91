"""Run every benchmark in bench/ and compare with the committed baseline.

Each benchmark script prints one JSON object on its last line. Times are compared with
`baseline.json` as ratios (machines here are shared and noisy: read them as trends);
a benchmark's own `target_<key>_max` (at most) and `target_<key>_eq` (exactly) values are
hard limits and fail the run.
`--update-baseline` rewrites the baseline from this run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"


def _run(script: Path) -> dict[str, object]:
    print(f"== {script.name}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, cwd=HERE.parent
    )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return {"bench": script.stem, "error": f"exit {done.returncode}"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _violations(result: dict[str, object]) -> list[str]:
    problems = []
    for key, limit in result.items():
        name, _, bound = key.removeprefix("target_").rpartition("_")
        measured = result.get(name)
        if not key.startswith("target_") or not isinstance(limit, int | float):
            continue
        if not isinstance(measured, int | float):
            continue
        if bound == "max" and measured > limit:
            problems.append(f"{result['bench']}: {name} = {measured} > {limit}")
        elif bound == "eq" and measured != limit:
            problems.append(f"{result['bench']}: {name} = {measured}, not {limit}")
    return problems


def _compare(result: dict[str, object], baseline: dict[str, object]) -> None:
    for key, value in result.items():
        old = baseline.get(key)
        if (
            key.endswith("_s")
            and isinstance(value, int | float)
            and isinstance(old, int | float)
            and old
        ):
            print(f"  {key:<28} {value:>10} (baseline {old}, x{value / old:.2f})")
        elif key != "bench":
            print(f"  {key:<28} {value!s:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    # `_name.py` files are helpers the benchmarks share, not benchmarks.
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and p.name[0] != "_")
    if args.names:
        scripts = [s for s in scripts if s.stem in args.names]
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    results = {s.stem: _run(s) for s in scripts}
    problems: list[str] = []
    for name, result in results.items():
        print(name)
        _compare(result, baseline.get(name, {}))
        problems += _violations(result)
        if "error" in result:
            problems.append(f"{name}: {result['error']}")
    if args.update_baseline:
        BASELINE.write_text(json.dumps({**baseline, **results}, indent=2, sort_keys=True) + "\n")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
