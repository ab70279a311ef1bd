"""Default training time on Adult: this tree against an earlier commit, in the same run.

    .venv/bin/python benchmarks/train_time.py [--baseline REF] [--repeats N] [--workdir DIR]

Exports REF (default 52c8b29, the last commit before the one-default-model change) with
`git archive` under the work directory, then times the whole `python -m pipelines.train` job
(default options, Adult's 80% training split as the demo makes it) for the baseline and for
this tree, alternating, each in a fresh process with the same venv. Prints one table: wall
seconds of every run, the median of each, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from harness import ROOT

sys.path.insert(0, ROOT)


def export(ref: str, workdir: str) -> str:
    """The tree of `ref`, extracted once under `workdir`."""
    target = os.path.join(workdir, f"tree-{ref}")
    if not os.path.isdir(target):
        os.makedirs(target)
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target


def timed_train(tree: str, train_path: str, schema: str, model_dir: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.train", "--input", train_path, "--schema",
                    schema, "--model-dir", model_dir, "--overwrite"], cwd=tree, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": tree})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="52c8b29")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "train_time"))
    args = parser.parse_args()
    from aepipe import datasets
    from pipelines.demo import split_adult

    train_path, _ = split_adult(args.workdir)
    trees = {f"baseline {args.baseline}": export(args.baseline, args.workdir),
             "this tree": ROOT}
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    for repeat in range(args.repeats):
        for name, tree in trees.items():
            model_dir = os.path.join(args.workdir, f"model-{len(seconds[name])}-{name[:4]}")
            seconds[name].append(timed_train(tree, train_path, datasets.adult_schema(),
                                             model_dir))
            print(f"{name}, run {repeat + 1}: {seconds[name][-1]:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print("\n| code | runs (s) | median (s) |\n|---|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {medians[name]:.1f} |")
    baseline, ours = medians.values()
    print(f"\nthis tree / baseline: {ours / baseline:.2f}x")


if __name__ == "__main__":
    main()
