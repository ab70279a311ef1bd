#!/usr/bin/env bash
# What Dataflow workers get, checked without a cloud: a FRESH venv gets exactly what the
# Dockerfile installs into the worker image (install_worker_packages below, which the Dockerfile
# runs too), then, from a directory outside the repository so that nothing is imported from the
# work tree, infer-schema -> train -> encode -> sample run end to end on a 5,000-row slice of the
# embedded Adult data on Beam's multi-process DirectRunner (separate worker processes: pickling,
# setup(), no shared globals), and the row counts and the package versions inside the worker
# processes are checked against constraints.txt.
#
#   scripts/check_worker_env.sh            # or: make worker-check   (PYTHON=python3.11 by default)
#   scripts/check_worker_env.sh --install PYTHON
#       only the install step, into PYTHON's environment, from the current directory (which must
#       hold constraints.txt, setup.py, README.md, aepipe/, pipelines/): the Dockerfile's RUN.
#
# Prints "worker-check: PASS" or "worker-check: FAIL ..." last; exits non-zero on failure.
set -euo pipefail

# The one install command of the worker environment, shared with the Dockerfile. Non-editable,
# no test extras, every version from constraints.txt; pip check fails on any conflict with what
# the environment (e.g. Beam's container) already holds.
install_worker_packages() {
    local python=$1
    "$python" -m pip install --disable-pip-version-check --upgrade "pip==25.3"
    "$python" -m pip install --disable-pip-version-check -c constraints.txt .
    "$python" -m pip check
}

if [[ ${1:-} == --install ]]; then
    install_worker_packages "${2:?usage: $0 --install PYTHON}"
    exit 0
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aepipe-worker-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'echo "worker-check: FAIL (line $LINENO: $BASH_COMMAND)" >&2' ERR
unset PYTHONPATH  # nothing from the work tree, only what the venv holds
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-1}  # TensorFlow's INFO lines, per worker
SECONDS=0

step() { echo "== worker-check [${SECONDS}s] $*"; }

step "fresh venv ($PYTHON) in $WORK/venv"
"$PYTHON" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python

# Install from a copy of exactly the files the Dockerfile copies, so the repository's build/ and
# *.egg-info are neither used nor touched.
step "install (as the Dockerfile does): pip install -c constraints.txt . && pip check"
mkdir "$WORK/src"
cp -r "$REPO"/constraints.txt "$REPO"/setup.py "$REPO"/README.md "$REPO"/aepipe "$REPO"/pipelines \
    "$WORK/src/"
if ! (cd "$WORK/src" && install_worker_packages "$VPY") >"$WORK/install.log" 2>&1; then
    tail -n 40 "$WORK/install.log"
    echo "worker-check: FAIL (install or pip check; the lines above)"
    exit 1
fi
tail -n 2 "$WORK/install.log" | cut -c1-300
cp "$REPO/constraints.txt" "$WORK/constraints.txt"
rm -rf "$WORK/src"

cd "$WORK"
MP=(--direct_running_mode=multi_processing --direct_num_workers=2)
AEPIPE=$WORK/venv/bin/aepipe
ROWS=5000

step "5,000-row slice of the embedded Adult data"
"$VPY" - "$ROWS" <<'PY'
import sys
import pyarrow.parquet as pq
from aepipe import datasets
assert "/venv/" in datasets.__file__, datasets.__file__  # the installed package, not the tree
table = pq.read_table(datasets.adult_parquet()).slice(0, int(sys.argv[1]))
pq.write_table(table, "adult-slice.parquet")
PY

step "aepipe infer-schema"
"$AEPIPE" infer-schema --input adult-slice.parquet --output schema.yaml
step "aepipe train --epochs 1 (multi_processing, 2 workers)"
"$AEPIPE" train --input adult-slice.parquet --schema schema.yaml --model-dir model --epochs 1 "${MP[@]}"
step "aepipe encode (multi_processing, 2 workers)"
"$AEPIPE" encode --input adult-slice.parquet --model-dir model --output codes/part "${MP[@]}"
step "aepipe sample --num-rows 1000 (multi_processing, 2 workers)"
"$AEPIPE" sample --model-dir model --num-rows 1000 --seed 7 --output synthetic/part "${MP[@]}"
step "aepipe sample --conditions (500 rows with sex fixed; multi_processing, 2 workers)"
"$VPY" -c 'import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"sex": ["Female"], "num_rows": [500]}), "conditions.parquet")'
"$AEPIPE" sample --model-dir model --conditions conditions.parquet --seed 7 \
    --output conditioned/part "${MP[@]}"

step "row counts, and versions inside the worker processes against constraints.txt"
"$VPY" - "$ROWS" <<'PY'
import glob, importlib.metadata, json, os, sys

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

rows = int(sys.argv[1])
problems = []

def count(pattern):
    files = sorted(glob.glob(pattern))
    return len(files), sum(pq.ParquetFile(f).metadata.num_rows for f in files)

files, encoded = count("codes/part-*.parquet")
if not files or encoded != rows:
    problems.append(f"encode wrote {encoded} rows in {files} files, expected {rows}")
dead = {f: pq.ParquetFile(f).metadata.num_rows
        for f in glob.glob("**/*.parquet", recursive=True) if "rejected" in f}
if dead:  # no row is bad here, and no dead-letter file is written when none is rejected
    problems.append(f"dead-letter files written: {dead}")
files, sampled = count("synthetic/part-*.parquet")
if not files or sampled != 1000:
    problems.append(f"sample wrote {sampled} rows in {files} files, expected 1000")
conditioned = pq.read_table(sorted(glob.glob("conditioned/part-*.parquet")))
if conditioned.column("sex").to_pylist() != ["Female"] * 500:
    problems.append("sample --conditions did not write 500 rows with sex Female")
if not os.path.exists("model/manifest.json"):
    problems.append("no model/manifest.json")
print(f"rows: input {rows}, encoded {encoded}, sampled {sampled}")

PACKAGES = ["apache-beam", "tensorflow", "tensorflow-transform", "keras", "pandas", "pyarrow",
            "numpy"]
pins = {}
for line in open("constraints.txt"):
    name, sep, version = line.split("#")[0].strip().partition("==")
    if sep:
        pins[name.lower().replace("_", "-")] = version.strip()

def report(_, packages=tuple(PACKAGES)):  # runs in a worker process
    import importlib.metadata, os, sys
    import aepipe
    return {"pid": os.getpid(), "python": sys.executable, "aepipe": aepipe.__file__,
            "versions": {p: importlib.metadata.version(p) for p in packages}}

options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
with beam.Pipeline(options=options) as p:
    (p | beam.Create(range(16)) | beam.Reshuffle() | beam.Map(report)
       | beam.Map(json.dumps) | beam.io.WriteToText("workers", shard_name_template=""))
workers = {r["pid"]: r for r in map(json.loads, open("workers"))}
if not workers or os.getpid() in workers:
    problems.append(f"expected separate worker processes, got pids {sorted(workers)}")
venv = os.path.dirname(os.path.dirname(sys.executable))
launcher = {"pid": os.getpid(), "python": sys.executable,
            "versions": {p: importlib.metadata.version(p) for p in PACKAGES}}
for who, r in [("launcher", launcher)] + [(f"worker {pid}", r) for pid, r in workers.items()]:
    if not r["python"].startswith(venv + os.sep):
        problems.append(f"{who} runs {r['python']}, not the fresh venv's python")
    if "aepipe" in r and not r["aepipe"].startswith(venv + os.sep):
        problems.append(f"{who} imports aepipe from {r['aepipe']}, not the fresh venv")
    for name, version in r["versions"].items():
        if pins.get(name) != version:
            problems.append(f"{who}: {name} {version}, constraints.txt pins {pins.get(name)}")
print(f"{len(workers)} worker processes {sorted(workers)}; versions:",
      ", ".join(f"{k} {v}" for k, v in launcher["versions"].items()))
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY

echo "worker-check: PASS (fresh venv from 'pip install -c constraints.txt .', infer-schema," \
     "train, encode, sample on multi_processing DirectRunner, worker versions = constraints.txt;" \
     "${SECONDS}s)"
