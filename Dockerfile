# Worker image for Dataflow (or any portable runner): Beam's own Python 3.11 SDK image plus
# aepipe and exactly the versions in constraints.txt, the set the launcher's venv holds, so that
# what the launcher pickles is unpickled by the same Beam, numpy, pandas and pyarrow.
#
# UNTESTED HERE: docker cannot run on the machine this was written on, so this image has never
# been built. What is tested is its install step: `make worker-check` (CI runs it) runs the very
# same command, scripts/check_worker_env.sh's install_worker_packages (pip 25.3, then
# `pip install -c constraints.txt .`, then `pip check`), into a fresh Python 3.11 venv, and runs
# infer-schema, train, encode and sample on Beam's multi-process DirectRunner with it.
#
# Build, push and use (from the repository root):
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/aepipe:VERSION .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/aepipe:VERSION
#   aepipe train ... --runner DataflowRunner --project PROJECT --region REGION \
#       --temp_location gs://BUCKET/tmp \
#       --sdk_container_image REGION-docker.pkg.dev/PROJECT/REPO/aepipe:VERSION
# (VERSION: e.g. $(git rev-parse --short HEAD).) Launch from a venv made with the same
# `pip install -c constraints.txt .` so launcher and workers agree.
#
# With this image, leave out --setup_file and --requirements_file: the workers start with
# everything installed. (`--setup_file ./setup.py` alone instead makes every worker resolve
# setup.py's ranges against the container at start-up: TensorFlow and tf.Transform are
# downloaded on every worker, and their dependencies float.)
#
# Smoke test of the built image, no cloud needed: train and encode Adult on Beam's multi-process
# DirectRunner, the nearest local stand-in for separate workers (pickling, setup(), no shared
# globals):
#   docker run --rm --entrypoint bash IMAGE -c 'set -e; cd /tmp
#     A=$(python -c "from aepipe import datasets as d; print(d.adult_parquet())")
#     S=$(python -c "from aepipe import datasets as d; print(d.adult_schema())")
#     MP="--direct_running_mode=multi_processing --direct_num_workers=2"
#     aepipe train --input $A --schema $S --model-dir m --epochs 1 $MP
#     aepipe encode --input $A --model-dir m --output codes/part $MP'
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/aepipe
# The same files scripts/check_worker_env.sh copies before its install.
COPY constraints.txt setup.py README.md ./
COPY aepipe ./aepipe
COPY pipelines ./pipelines
COPY scripts/check_worker_env.sh ./scripts/
# The shared install step: only what aepipe needs (not the test extras), at the pinned versions;
# pip check fails the build if the container's own packages and the pins disagree.
RUN PIP_NO_CACHE_DIR=1 bash scripts/check_worker_env.sh --install python \
    && python -c "import aepipe, apache_beam, tensorflow_transform"
WORKDIR /
# Beam's image keeps its ENTRYPOINT (/opt/apache/beam/boot), which starts the SDK harness.
