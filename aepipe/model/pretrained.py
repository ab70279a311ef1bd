"""A trained encoder as a Keras model, to pre-train supervised models: an autoencoder learns its
code from every row, labelled or not; a head on the code, fine-tuned with the encoder on the
few labelled rows, starts from what the code keeps.

    encoder = aepipe.encoder_model("models/v1")            # raw columns -> code
    head = keras.layers.Dense(1, activation="sigmoid")(encoder.output)
    classifier = keras.Model(encoder.input, head)
    classifier.compile("adam", "binary_crossentropy")
    classifier.fit(inputs, labels)    # inputs: the raw columns, as ModelDirectory.inputs makes

The SavedModel's `transform` signature (the tf.Transform graph and the encoder's input layout)
runs inside a Keras `TFSMLayer`, frozen; the encoder is a Keras network of the trained
shape that starts from the trained weights and trains with the head unless `trainable` is
False. Its inputs are the signatures' raw columns (`aepipe.table.signatures`), named and typed
as `ModelDirectory.inputs` makes them from a record batch; its output is the code (for the
VAE, the posterior mean), as the `encode` signature gives it.
"""

from __future__ import annotations

import keras

from aepipe.store.reader import ModelDirectory
from aepipe.table import signatures

__all__ = ["encoder_model"]


def encoder_model(model_dir: str, *, trainable: bool = True,
                  trust_model: bool = False) -> keras.Model:
    """The encoder of a published model, raw columns in, code out (see the module)."""
    model = ModelDirectory(model_dir, trust_model=trust_model)
    model.require_code("encoder_model")
    options = model.manifest.options
    inputs = {name: keras.Input(shape=(), dtype=dtype, name=name)
              for name, dtype in signatures.raw_columns(model.schema.modelled).items()}
    transform = keras.layers.TFSMLayer(model.local_saved_model(),
                                       call_endpoint=signatures.TRANSFORM, trainable=False)
    features = transform(inputs)[signatures.FEATURES]
    weights = [w.numpy() for w in model.saved_model.encoder_weights]
    network = keras.Sequential(
        [keras.layers.Dense(width, activation=options.activation) for width in options.hidden]
        + [keras.layers.Dense(weights[-1].shape[0])], name="encoder")
    encoded = network(features)
    network.set_weights(weights)
    network.trainable = trainable  # after building, so that it reaches every layer
    encoder = keras.Model(inputs, encoded[:, :options.code_size], name="pretrained_encoder")
    encoder.model_directory = model  # keeps a remote model's local copy while the model lives
    return encoder
