"""The exported SavedModel: the tf.Transform graph, the autoencoder and the sampling prior behind
the signatures of `aepipe.table.signatures`, loadable with `tf.saved_model.load` alone.

Every signature that reads rows runs the same path: the raw columns become the tf.Transform feed
(`aepipe.transform.feed.feed_tensors`), the transform graph turns the feed into the model's
matrices, and the model reads them as it did in training. Every signature that writes rows runs
the decoder's output matrix through `aepipe.model.decoding`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from aepipe.model import decoding
from aepipe.model.conditional import CANDIDATES, Conditioner, targets
from aepipe.model.autoencoder import OUTPUTS, Autoencoder
from aepipe.model.prior import Prior
from aepipe.table import signatures
from aepipe.table.kinds import Kind
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, DRAWS_PER_SCALAR, Layout, items_of
from aepipe.transform.feed import feed_tensors
from aepipe.transform.preprocess import read_statistics, read_vocabularies

__all__ = ["AutoencoderModule", "analysis_results", "raw_signature", "save"]


def raw_signature(layout: Layout) -> dict[str, tf.TensorSpec]:
    """The raw columns' tensor specs, by name (one input per name)."""
    return {name: tf.TensorSpec([None], tf.as_dtype(dtype), name=name)
            for name, dtype in signatures.raw_columns(layout.modelled).items()}


def analysis_results(tft_layer: Any, layout: Layout
                     ) -> tuple[dict[str, dict[str, float | list[float]]], dict[str, list[str]]]:
    """The analyzers' results, read back from the transform (one all-null row carries them):
    each scalar's and categorical's statistics, and each vocabulary."""
    item_sets, one_null_row = {c.name for c in layout.item_sets}, {}
    for name, spec in raw_signature(layout).items():
        if name in item_sets:
            one_null_row[name] = tf.zeros([0], tf.string)  # one empty set
        elif spec.dtype == tf.bool:
            one_null_row[name] = tf.ones([1], tf.bool)  # every null mask set
        else:
            one_null_row[name] = tf.zeros([1], spec.dtype)
    transformed = {k: v.numpy() for k, v in tft_layer(feed_tensors(one_null_row, layout)).items()
                   if isinstance(v, tf.Tensor)}
    return read_statistics(transformed, layout), read_vocabularies(transformed, layout)


class AutoencoderModule(tf.Module):
    """Holds the tf.Transform layer, the autoencoder, the prior and the constants the decoder
    needs; its tf.functions are the signatures."""

    def __init__(self, *, tft_layer: Any, model: Autoencoder,
                 statistics: Mapping[str, Mapping[str, float | list[float]]],
                 vocabularies: Mapping[str, list[str]], residual_std: Mapping[str, float],
                 prior: Prior):
        super().__init__()
        self.tft_layer = tft_layer
        self.model = model
        # the encoder's weights in order, for `aepipe.model.pretrained.encoder_model`
        self.encoder_weights = [weight.value for weight in model.encoder.weights]
        layout = self._layout = model.layout
        self._values = decoding.Values([layout.scalars[i].name for i in layout.values],
                                       statistics, residual_std)
        self._vocabularies = {c: tf.constant(v if v else [""], tf.string)
                              for c, v in vocabularies.items()}
        self._prior = prior
        raw = raw_signature(layout)
        code = tf.TensorSpec([None, model.code_size], tf.float32, name=signatures.CODE)
        uniform = tf.TensorSpec([None, layout.draws.width], tf.float32, name=signatures.UNIFORM)
        self.encode = tf.function(self._encode, input_signature=[raw], autograph=False)
        self.score = tf.function(self._score, input_signature=[raw], autograph=False)
        self.transform = tf.function(self._transform, input_signature=[raw], autograph=False)
        self.decode = tf.function(self._decode, input_signature=[code], autograph=False)
        self.generate = tf.function(self._generate, input_signature=[code, uniform],
                                    autograph=False)
        self.sample = tf.function(self._sample, autograph=False, input_signature=[
            tf.TensorSpec([None, model.code_size], tf.float32, name=signatures.NOISE),
            tf.TensorSpec([None, prior.draws + layout.draws.width], tf.float32,
                          name=signatures.UNIFORM)])
        self._conditioner = Conditioner(layout, prior, residual_std=residual_std)
        self.complete = tf.function(self._complete, autograph=False, input_signature=[
            raw, tf.TensorSpec([None, CANDIDATES * model.code_size], tf.float32,
                               name=signatures.NOISE),
            tf.TensorSpec([None, self._conditioner.uniform_draws + layout.draws.width],
                          tf.float32, name=signatures.UNIFORM)])
        self.recommend = tf.function(self._recommend, autograph=False, input_signature=[
            raw, tf.TensorSpec([], tf.int32, name=signatures.TOP_K),
            tf.TensorSpec([], tf.bool, name=signatures.EXCLUDE_SEEN)]) if layout.item_sets \
            else None

    def signatures(self) -> dict[str, Any]:
        """The signatures by name, as `tf.saved_model.save` takes them."""
        found = {signatures.ENCODE: self.encode, signatures.SCORE: self.score,
                 signatures.TRANSFORM: self.transform, signatures.DECODE: self.decode,
                 signatures.GENERATE: self.generate, signatures.SAMPLE: self.sample,
                 signatures.COMPLETE: self.complete,
                 signatures.RECOMMEND: self.recommend}
        return {name: function for name, function in found.items() if function is not None}

    # Reading rows -----------------------------------------------------------------------------

    def _inputs(self, raw: dict) -> dict:
        """The model's input matrices, from the transform of the raw columns."""
        transformed = self.tft_layer(feed_tensors(raw, self._layout))
        inputs = {name: transformed[name] for name in (SCALARS, NULLS, CATEGORIES)
                  if name in transformed}
        for column, size in zip(self._layout.item_sets, self._layout.items):
            inputs[items_of(column.name)] = tf.sparse.to_dense(
                transformed[items_of(column.name)], default_value=size)
        return inputs

    def _encode(self, raw: dict) -> dict:
        inputs = self._inputs(raw)
        code = self.model.encode(inputs)
        errors = self.model.column_errors(inputs, self.model.decoder(code))
        return {signatures.CODE: code, signatures.SCORE: tf.reduce_sum(errors, axis=1),
                signatures.COLUMN_ERRORS: errors}

    def _score(self, raw: dict) -> dict:
        return {signatures.SCORE: self._encode(raw)[signatures.SCORE]}

    def _transform(self, raw: dict) -> dict:
        """The encoder's input matrix (see `Autoencoder.embed`)."""
        return {signatures.FEATURES: self.model.embed(self._inputs(raw))}

    def _recommend(self, raw: dict, top_k: tf.Tensor, exclude_seen: tf.Tensor) -> dict:
        """Per item set column, its `top_k` likeliest items for each row, their probabilities
        among the items it may recommend and how many of the k are real (fewer where too few
        items are left)."""
        layout = self._layout
        inputs = self._inputs(raw)
        logits = self.model(inputs)[OUTPUTS][:, layout.outputs.items]
        recommended = {}
        for column, scores, chosen in zip(layout.item_sets,
                                          tf.split(logits, list(layout.items), axis=1),
                                          self.model.item_sets(inputs)):
            recommended.update(decoding.top_items(column.name, scores, chosen,
                                                  self._vocabularies[column.name], top_k,
                                                  exclude_seen, logits=True))
        return recommended

    # Writing rows -----------------------------------------------------------------------------

    def _decode(self, code: tf.Tensor) -> dict:
        return self._columns(self.model.decoder(code), uniform=None)

    def _generate(self, code: tf.Tensor, uniform: tf.Tensor) -> dict:
        return self._columns(self.model.decoder(code), uniform=uniform)

    def _sample(self, noise: tf.Tensor, uniform: tf.Tensor) -> dict:
        """A code from the prior, decoded as `generate` does."""
        draws = self._prior.draws
        return self._generate(self._prior.codes(noise, uniform[:, :draws]), uniform[:, draws:])

    def _complete(self, raw: dict, noise: tf.Tensor, uniform: tf.Tensor) -> dict:
        """Rows with their non-null cells kept and the others drawn given them: a code from
        p(z | the fixed cells) (`aepipe.model.conditional`), decoded as `generate` does."""
        draws = self._conditioner.uniform_draws
        code = self._conditioner.codes(targets(self._layout, self._inputs(raw)),
                                       self.model.decoder, noise, uniform[:, :draws])
        decoded = self._generate(code, uniform[:, draws:])
        for column in self._layout.modelled:
            if column.kind is Kind.ITEMS:
                continue
            null = signatures.null_name(column.name)
            decoded[column.name] = tf.where(raw[null], decoded[column.name], raw[column.name])
            decoded[null] = decoded[null] & raw[null]
        return decoded

    def _columns(self, outputs: tf.Tensor, uniform: tf.Tensor | None) -> dict:
        """The decoder's output matrix as the raw columns (see `aepipe.model.decoding`)."""
        layout, decoded = self._layout, {}
        draws = _Draws(layout, uniform)
        scalars = self._scalars(outputs, draws)
        nulls = decoding.flags(outputs[:, layout.outputs.nulls], draws.part("nulls"))
        null_of = dict(zip(layout.nullable.tolist(), tf.unstack(nulls, axis=1)))
        for j, column in enumerate(layout.scalars):
            if column.name in layout.counted_sets:
                continue
            value = scalars[j]
            decoded[column.name] = (tf.cast(tf.round(value), tf.int64)
                                    if column.kind is Kind.INTEGER else value)
            decoded[signatures.null_name(column.name)] = null_of.get(
                j, tf.zeros_like(outputs[:, 0], tf.bool))
        decoded.update(self._categories(outputs[:, layout.outputs.categories],
                                        draws.part("categories")))
        decoded.update(self._item_sets(outputs[:, layout.outputs.items], scalars,
                                       draws.part("items")))
        return decoded

    def _scalars(self, outputs: tf.Tensor, draws: "_Draws") -> list[tf.Tensor]:
        """Each scalar's decoded column: a value in original units, or a boolean."""
        layout = self._layout
        predicted = outputs[:, layout.outputs.scalars]
        drawn = draws.scalars()
        columns = tf.unstack(decoding.flags(predicted, None if drawn is None
                                            else drawn[..., 0]), axis=1) if layout.scalars else []
        if len(layout.values):
            bins = tf.reshape(outputs[:, layout.outputs.bins],
                              [-1, len(layout.values), layout.bins]) if layout.bins else None
            values = self._values.original(
                tf.gather(predicted, layout.values, axis=1), bins,
                None if drawn is None else tf.gather(drawn, layout.values, axis=1),
                outputs[:, layout.outputs.means] if len(layout.means) else None)
            for i, value in zip(layout.values.tolist(), tf.unstack(values, axis=1)):
                columns[i] = value
        return columns

    def _categories(self, logits: tf.Tensor, uniform: tf.Tensor | None) -> dict:
        """Each categorical's known category or null (never the out-of-vocabulary bucket)."""
        layout, decoded = self._layout, {}
        for j, (column, classes, start) in enumerate(zip(
                layout.categoricals, layout.classes, layout.category_offsets.tolist())):
            size = max(classes - 2, 1)
            allowed = logits[:, start:start + size]
            if column.nullable:
                allowed = tf.concat([allowed, logits[:, start + size + 1:start + size + 2]], 1)
            choice = decoding.choose(allowed, None if uniform is None else uniform[:, j])
            decoded[column.name] = tf.gather(self._vocabularies[column.name],
                                             tf.minimum(choice, size - 1))
            decoded[signatures.null_name(column.name)] = choice == size
        return decoded

    def _item_sets(self, logits: tf.Tensor, scalars: list[tf.Tensor],
                   uniform: tf.Tensor | None) -> dict:
        layout, decoded = self._layout, {}
        index = {c.name: j for j, c in enumerate(layout.scalars)}
        for j, (column, size, start) in enumerate(zip(
                layout.item_sets, layout.items, layout.item_offsets.tolist())):
            name = column.name
            items, sizes = decoding.item_set(
                logits[:, start:start + max(size, 1)], scalars[index[signatures.size_name(name)]],
                None if uniform is None else uniform[:, j])
            decoded[name] = tf.gather(self._vocabularies[name], items)
            decoded[signatures.size_name(name)] = sizes
        return decoded


class _Draws:
    """A row's uniform draws by part of the layout (None everywhere without draws)."""

    def __init__(self, layout: Layout, uniform: tf.Tensor | None):
        self._layout, self._uniform = layout, uniform

    def part(self, name: str) -> tf.Tensor | None:
        if self._uniform is None:
            return None
        return self._uniform[:, getattr(self._layout.draws, name)]

    def scalars(self) -> tf.Tensor | None:
        """[batch, scalars, DRAWS_PER_SCALAR]: a bin, a noise and a position per scalar."""
        drawn = self.part("scalars")
        return None if drawn is None else tf.reshape(
            drawn, [-1, len(self._layout.scalars), DRAWS_PER_SCALAR])


def save(module: Any, path: str) -> None:
    """Saves a module with its `signatures()` (an autoencoder's, or a linear model's)."""
    tf.saved_model.save(module, path, signatures=module.signatures())
