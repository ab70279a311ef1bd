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
    "ValidateBatches",
    "TrainAutoencoder",
    "Encode",
    "EncodeOptions",
    "Sample",
    "Recommend",
    "RecommendOptions",
    "ModelDirectory",
    "check_inputs",
]

_LOCATIONS = {
    "Schema": "aepipe.schema",
    "Kind": "aepipe.schema",
    "ModelOptions": "aepipe.options",
    "ValidateBatches": "aepipe.validate",
    "check_inputs": "aepipe.validate",
    "TrainAutoencoder": "aepipe.train",
    "Encode": "aepipe.encode",
    "EncodeOptions": "aepipe.encode",
    "Sample": "aepipe.sample",
    "Recommend": "aepipe.recommend",
    "RecommendOptions": "aepipe.recommend",
    "ModelDirectory": "aepipe.model_dir",
}


def __getattr__(name):
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'aepipe' has no attribute {name!r}")
