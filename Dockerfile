# Worker image for Dataflow (or any portable runner): Beam's own Python 3.11 SDK image plus
# aepipe and exactly the versions in constraints.txt, the set the launcher's venv holds, so that
# what the launcher pickles is unpickled by the same Beam, numpy, pandas and pyarrow.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/aepipe:$(git rev-parse --short HEAD) .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/aepipe:...
#   aepipe train ... --runner DataflowRunner --sdk_container_image REGION-docker.pkg.dev/...
#
# With this image, leave out --setup_file and --requirements_file: the workers start with
# everything installed. (`--setup_file ./setup.py` alone instead makes every worker resolve
# setup.py's ranges against the container at start-up: TensorFlow and tf.Transform are
# downloaded on every worker, and their dependencies float.)
#
# Smoke test of the image, no cloud needed: train and encode Adult on Beam's multi-process
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
COPY constraints.txt setup.py README.md ./
COPY aepipe ./aepipe
COPY pipelines ./pipelines
# -c: only what aepipe needs is installed (not the test extras), at the pinned versions; pip
# check fails the build if the container's own packages and the pins disagree.
RUN pip install --no-cache-dir -c constraints.txt . && pip check \
    && python -c "import aepipe, apache_beam, tensorflow_transform"
WORKDIR /
# Beam's image keeps its ENTRYPOINT (/opt/apache/beam/boot), which starts the SDK harness.
