"""Running a published model in a Beam pipeline: Beam's `RunInference` with aepipe's own
`ModelHandler`.

Each of encode, sample and recommend has a framework-free core (`BatchEncoder`, `BlockSampler`,
`BatchRecommender`): a callable built around a `ModelDirectory` that turns one element (a record
batch, or a block index) into one output. `CoreHandler` is the `ModelHandler` that loads such a
core once per worker process (RunInference shares it between the DoFn's instances), never
pickles a model, and runs it on each element: elements are already batches of thousands of
rows, so RunInference's own batching is off (`with_no_batching`). Beside RunInference's own
metrics (inference counts and latencies), each core's rows are counted in aepipe's namespace
and logged as they go (`aepipe.progress`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Protocol

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from aepipe.beam import counters
from aepipe.logs import import_tensorflow_quietly
from aepipe.progress import Progress
from aepipe.store.reader import ModelDirectory

__all__ = ["Core", "CoreHandler", "RunCore", "ModelTransform"]


class Core(Protocol):
    """A model's framework-free core: one element in, one output out."""

    def __call__(self, element: Any) -> Any: ...

    def rows(self, output: Any) -> int:
        """The rows an output holds, for the rows_written counter."""


class CoreHandler(ModelHandler[Any, Any, Core]):
    """Loads a core from a model directory once per worker and runs it on each element.

    `build` makes the core from the loaded model (a picklable callable: a class, or a
    functools.partial of one); `done` is the verb of the progress lines ("encoded").
    """

    def __init__(self, model_dir: str, build: Callable[[ModelDirectory], Core], *,
                 done: str, trust_model: bool = False):
        super().__init__()
        self._model_dir = model_dir
        self._build = build
        self._done = done
        self._trust_model = trust_model
        self._progress: Progress | None = None

    def load_model(self) -> Core:
        import_tensorflow_quietly()  # a worker process's first TensorFlow, without its noise
        model = ModelDirectory(self._model_dir, trust_model=self._trust_model).load()
        return self._build(model)

    def run_inference(self, batch: Any, model: Core,
                      inference_args: dict[str, Any] | None = None) -> Iterable[Any]:
        output = model(batch)
        rows = model.rows(output)
        counters.counter(counters.WRITTEN).inc(rows)
        if self._progress is None:
            self._progress = Progress(type(model).__module__, self._done)
        self._progress.add(rows)
        return [output]

    def get_num_bytes(self, batch: Any) -> int:
        return getattr(batch, "nbytes", 0)

    def get_metrics_namespace(self) -> str:
        return "aepipe_inference"


class RunCore(beam.PTransform):
    """`RunInference` of a `CoreHandler` on already-batched elements: one output each."""

    def __init__(self, handler: CoreHandler):
        super().__init__()
        self._handler = handler

    def expand(self, elements):
        return elements | RunInference(self._handler.with_no_batching())


class ModelTransform(beam.PTransform):
    """The base of the PTransforms that run a model's core over valid record batches (`Encode`,
    `Recommend`): `core` is the core's class, built on each worker around the loaded model,
    the input's Arrow schema and the options; `done` the verb of its progress lines.

    The model directory is read (its manifest only) when the transform is built, so a missing
    model or a bad option fails before the pipeline runs; `output_schema` is the core's.
    `trust_model` skips the op check (`aepipe.store.trust`).
    """

    core: Callable[..., Core]
    done: str

    def __init__(self, model_dir: str, input_schema: Any, *, options: Any,
                 trust_model: bool = False):
        super().__init__()
        self._input_schema = input_schema
        self.output_schema = self.core(ModelDirectory(model_dir, trust_model=trust_model),
                                       input_schema, options).output_schema
        self._handler = CoreHandler(
            model_dir, functools.partial(self.core, input_schema=input_schema, options=options),
            done=self.done, trust_model=trust_model)

    def expand(self, batches):
        return batches | RunCore(self._handler)
