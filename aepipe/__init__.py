"""aepipe: autoencoders for Apache Beam pipelines.

Train a TensorFlow autoencoder on a Parquet dataset with tf.Transform, encode records into
low-dimensional feature columns, sample synthetic records, and recommend items from item set
columns, as Beam PTransforms.

The public transforms are imported lazily, so that ``import aepipe`` (and the CLI's ``--help``)
does not pay for TensorFlow's start-up.
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "Schema",
    "Kind",
    "ModelOptions",
    "EncodeOptions",
    "SampleOptions",
    "RecommendOptions",
    "EvaluateOptions",
    "ValidateBatches",
    "check_inputs",
    "TrainAutoencoder",
    "Encode",
    "Sample",
    "Recommend",
    "ModelDirectory",
    "encoder_model",
]

_LOCATIONS = {
    "Schema": "aepipe.table.schema",
    "Kind": "aepipe.table.schema",
    "ModelOptions": "aepipe.options",
    "EncodeOptions": "aepipe.options",
    "SampleOptions": "aepipe.options",
    "RecommendOptions": "aepipe.options",
    "EvaluateOptions": "aepipe.options",
    "ValidateBatches": "aepipe.beam.validate",
    "check_inputs": "aepipe.beam.validate",
    "TrainAutoencoder": "aepipe.beam.train",
    "Encode": "aepipe.beam.encode",
    "Sample": "aepipe.beam.sample",
    "Recommend": "aepipe.beam.recommend",
    "ModelDirectory": "aepipe.store.reader",
    "encoder_model": "aepipe.model.pretrained",
}


def __getattr__(name):
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'aepipe' has no attribute {name!r}")
