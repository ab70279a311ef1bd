"""The op check: refuse a SavedModel that holds ops aepipe's own export never produces.

Why: a model directory may come from a shared bucket. The SHA-256 list in its manifest sits in
the same directory, so whoever can rewrite a file can rewrite the manifest too: it catches
accidents (a partial copy, a corrupted or edited file), not tampering. A SavedModel is a
program, not data. Its graph can hold ops that read files (``ReadFile``, ``MatchingFiles``,
``RestoreV2``, the dataset readers), write them (``WriteFile``, ``SaveV2``, ``PrintV2`` to a
``file://`` stream, summary writers) or run Python (``PyFunc``, ``EagerPyFunc``), and these run
on the job's workers, with their credentials, as soon as a signature is called.

What: `check_saved_model` reads ``saved_model.pb`` through Beam's file systems (so ``gs://``
works) before TensorFlow loads anything, collects the type of every node of every meta graph and
of every function in its function library, and refuses (`ModelDirError`) any op outside
`ALLOWED_OPS`: the ops that aepipe's export (`aepipe.model.export`: the autoencoder, the decoder's
inverse transforms and the tf.Transform graph it embeds) produces. The saver's own ops
(`SAVER_OPS`: ``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``, ...) appear in every
SavedModel, in the two functions its ``saver_def`` names (``_traced_save``, ``_traced_restore``);
they are allowed there and only there, in functions that nothing but the saver's two graph nodes
calls. ``tf.saved_model.load`` does not run those functions: for a SavedModel of one meta graph
with an object graph, which is what aepipe exports, it restores the variables with its own
code. For any other SavedModel it falls back to TensorFlow 1's loader, which runs the restore
op that ``saver_def`` names; so any other SavedModel is refused too.

What it does not protect against:

- a graph built only from allowed ops that computes something else than aepipe's model
  (wrong codes, wrong synthetic rows, a slow or memory-hungry graph);
- ``InitializeTableFromTextFileV2``, which tf.Transform's vocabularies need: it reads the text
  file whose name its input gives. aepipe's export passes the vocabulary assets, but a
  hand-crafted graph could pass another path and so read a local file into a lookup table (it
  cannot write one, and what it reads leaves only through the model's own outputs);
- the other files: the variables checkpoint and assets are data, read as tensors, but a model
  whose numbers were changed still loads (the manifest's digests catch that only by accident);
- the bytes changing between the check and the load on a local or shared file system; on an
  object store the check runs again on the local copy TensorFlow loads;
- bugs in TensorFlow's own parsing and kernels.

So trust a model directory from a shared bucket no further than the bucket: restrict who can
write it (IAM), keep object versioning on, or sign the directory yourself. ``--trust-model``
(``trust_model=True``) skips this check, for models exported by other code or other versions of
TensorFlow whose ops differ; ``python -m aepipe.store.trust MODEL_DIR...`` lists the ops a model
holds and those outside the allow-list.
"""

from __future__ import annotations

import posixpath
import sys
from collections import defaultdict
from typing import Any, Iterable, Iterator, Mapping, Sequence

from apache_beam.io.filesystems import FileSystems

from aepipe.errors import ModelDirError
from aepipe.store.manifest import SAVED_MODEL

__all__ = ["ALLOWED_OPS", "SAVER_OPS", "FILE_OPS", "read_saved_model", "model_ops",
           "disallowed_ops", "check_saved_model", "check_model_dir"]

SAVED_MODEL_PB = "saved_model.pb"

# The op types found in the SavedModels of models trained by aepipe (TensorFlow 2.21, tf.Transform
# 1.21) outside the saver's functions: --model vae and ae, --numeric quantile and standard,
# --activation relu and tanh, input dropout on and off, a schema with numeric, integer, boolean,
# categorical (string and integer-coded) and item set columns (one and two), nullable and not,
# plus key and timestamp columns. See docs/model-directory.md; `python -m aepipe.store.trust
# MODEL_DIR...` re-derives it after a TensorFlow upgrade.
ALLOWED_OPS: frozenset[str] = frozenset({
    "Abs", "AddV2", "ArgMax", "AssignVariableOp", "BiasAdd", "BitwiseXor", "BroadcastTo",
    "Cast", "ConcatV2", "Const", "Cumsum", "DenseBincount", "DivNoNan", "Einsum", "Equal",
    "Erfc", "Exp", "ExpandDims", "Expm1", "Fill", "Floor", "GatherNd", "GatherV2", "Greater",
    "GreaterEqual", "HashTableV2", "Identity", "InitializeTableFromTextFileV2", "IsFinite",
    "IsNan", "Less", "Log", "Log1p", "LogicalAnd", "LogicalNot", "LogSoftmax",
    "LookupTableFindV2", "LookupTableSizeV2", "LowerBound", "MatMul", "Max", "Maximum", "Mean",
    "Minimum", "Mul", "Ndtri", "Neg", "NoOp", "NotEqual", "OneHot", "Pack", "PartitionedCall",
    "Placeholder", "Prod", "RaggedTensorToSparse", "Range", "ReadVariableOp", "RealDiv", "Relu",
    "Reshape", "RightShift", "Round", "ScatterNd", "SelectV2", "Shape", "Sigmoid", "Size",
    "Softmax", "Softplus", "SparseSoftmaxCrossEntropyWithLogits", "SparseToDense", "SplitV",
    "Sqrt", "Square", "Squeeze", "StatefulPartitionedCall", "StopGradient", "StridedSlice",
    "StringToHashBucketFast", "Sub", "Sum", "Tanh", "Tile", "TopKV2", "Transpose", "Unpack",
    "UnsortedSegmentMax", "UnsortedSegmentSum", "UpperBound", "VarHandleOp",
    "VarIsInitializedOp", "Where", "ZerosLike",
})

# The op types found only in the saver's functions (`_traced_save`, `_traced_restore`) of the
# same models: allowed in functions that only the nodes `saver_def` names call.
SAVER_OPS: frozenset[str] = frozenset({
    "DisableCopyOnRead", "MergeV2Checkpoints", "RestoreV2", "SaveV2", "Select",
    "ShardedFilename", "StaticRegexFullMatch", "StringJoin",
})

# Ops known to touch files, run Python or leave the process; none may be in ALLOWED_OPS (a test
# checks). Not exhaustive: the allow-list, not this list, is what the check applies.
FILE_OPS: frozenset[str] = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "SaveSlices", "Restore",
    "RestoreSlice", "ImmutableConst", "PrintV2", "Print", "WholeFileReader", "WholeFileReaderV2",
    "TextLineReader", "TextLineReaderV2", "TFRecordReader", "TFRecordReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordDataset",
    "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset", "DatasetToTFRecord",
    "SaveDataset", "SaveDatasetV2", "LoadDataset", "SnapshotDatasetV2", "CacheDatasetV2",
    "CreateSummaryFileWriter", "WriteSummary", "WriteScalarSummary", "DebugIdentityV2",
    "LoadAndRemapMatrix", "GenerateVocabRemapping", "DecodeProtoV2", "EncodeProto",
    "DataServiceDatasetV4", "RegisterDataset",
})


def read_saved_model(saved_model_dir: str) -> Any:
    """The parsed ``saved_model.pb`` of a SavedModel directory (a ``SavedModel`` proto), read
    through Beam's file systems; a ModelDirError if it is missing or not a SavedModel."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = posixpath.join(saved_model_dir, SAVED_MODEL_PB)
    try:
        with FileSystems.open(path) as f:
            data = f.read()
    except Exception as e:  # Beam wraps the file system's own error (missing, permissions)
        raise ModelDirError(f"cannot read {path}: {e}") from None
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError
        raise ModelDirError(f"{path} is not a SavedModel: {e}") from None
    if not saved_model.meta_graphs:
        raise ModelDirError(f"{path} holds no meta graph")
    return saved_model


def model_ops(saved_model: Any) -> dict[str, dict[str, bool]]:
    """Every op type in a SavedModel proto: for each, the places it is in ("graph" for a meta
    graph's own nodes, "function NAME" for a function of its library) and whether each place is
    one of the saver's own functions. Calls to library functions are followed, not counted."""
    found: dict[str, dict[str, bool]] = defaultdict(dict)
    for index, meta_graph in enumerate(saved_model.meta_graphs):
        suffix = f" of meta graph {index}" if len(saved_model.meta_graphs) > 1 else ""
        graph = meta_graph.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        saver_only = _saver_functions(meta_graph, functions)
        for node in graph.node:
            if node.op not in functions:
                found[node.op][f"graph{suffix}"] = False
        for name, function in functions.items():
            for node in function.node_def:
                if node.op not in functions:
                    found[node.op][f"function {name}{suffix}"] = name in saver_only
    return dict(found)


def disallowed_ops(saved_model: Any, allowed: Iterable[str] = ALLOWED_OPS,
                   saver: Iterable[str] = SAVER_OPS) -> dict[str, list[str]]:
    """The op types outside the allow-list, each with the places (see `model_ops`) it is in."""
    allowed, saver = frozenset(allowed), frozenset(saver)
    refused = {}
    for op, places in sorted(model_ops(saved_model).items()):
        bad = sorted(place for place, in_saver in places.items()
                     if op not in allowed and not (in_saver and op in saver))
        if bad:
            refused[op] = bad
    return refused


def check_saved_model(saved_model_dir: str, *, model_dir: str | None = None) -> None:
    """Refuses (ModelDirError) a SavedModel directory that holds an op outside the allow-list,
    naming the op(s) and where they are, or that is not a TensorFlow 2 SavedModel of one meta
    graph with an object graph (as aepipe exports); reads only ``saved_model.pb``, loads
    nothing."""
    saved_model = read_saved_model(saved_model_dir)
    if len(saved_model.meta_graphs) != 1 or not saved_model.meta_graphs[0].HasField(
            "object_graph_def"):
        raise ModelDirError(
            f"model directory {model_dir or saved_model_dir}: its SavedModel is not the "
            "TensorFlow 2 kind aepipe exports (one meta graph with an object graph); "
            "TensorFlow would load it with its TensorFlow 1 loader, which runs the graph's own "
            "restore op, so aepipe refuses to load it; pass --trust-model (trust_model=True) "
            "only if you trust where this model came from")
    refused = disallowed_ops(saved_model)
    if not refused:
        return
    shown = "; ".join(f"{op} (in {_places(places)})" for op, places in list(refused.items())[:5])
    more = f"; and {len(refused) - 5} more op types" if len(refused) > 5 else ""
    raise ModelDirError(
        f"model directory {model_dir or saved_model_dir}: its SavedModel holds ops that "
        f"aepipe's export never produces: {shown}{more}. Such ops can read or write files or "
        "run code when the model runs, so aepipe refuses to load it; pass --trust-model "
        "(trust_model=True) only if you trust where this model came from")


def check_model_dir(model_dir: str) -> None:
    """`check_saved_model` on a model directory's ``saved_model/``."""
    check_saved_model(posixpath.join(model_dir, SAVED_MODEL), model_dir=model_dir)


def _places(places: Sequence[str]) -> str:
    return ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")


def _called(nodes: Iterable[Any], functions: Mapping[str, Any]) -> Iterator[str]:
    """The library functions a list of nodes calls: by op name, or through a function-valued
    attribute (``f`` of ``PartitionedCall``, branches and bodies of control flow, ...)."""
    for node in nodes:
        if node.op in functions:
            yield node.op
        for value in node.attr.values():
            if value.HasField("func"):
                yield value.func.name
            if value.HasField("list"):
                yield from (f.name for f in value.list.func)


def _closure(names: Iterable[str], functions: Mapping[str, Any]) -> set[str]:
    """The functions `names` are and all that they call, transitively."""
    seen: set[str] = set()
    todo = [n for n in names if n in functions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(n for n in _called(functions[name].node_def, functions)
                    if n in functions and n not in seen)
    return seen


def _saver_functions(meta_graph: Any, functions: Mapping[str, Any]) -> set[str]:
    """The functions only the saver uses: those the nodes named in ``saver_def`` call
    (transitively), less any that another graph node, the object graph (the functions
    ``tf.saved_model.load`` restores and the resource initializers it runs) or another function
    outside that set calls."""
    saver_def = meta_graph.saver_def
    saver_nodes = {_node_name(n) for n in (saver_def.save_tensor_name, saver_def.restore_op_name)
                   if n}
    if not saver_nodes:
        return set()
    graph = meta_graph.graph_def.node
    saver = _closure(_called([n for n in graph if n.name in saver_nodes], functions), functions)
    roots = set(_called([n for n in graph if n.name not in saver_nodes], functions))
    roots |= _object_graph_functions(meta_graph.object_graph_def)
    roots |= {g.gradient_func for g in meta_graph.graph_def.library.gradient}
    roots |= set(functions) - saver  # a saver function called from elsewhere is not the saver's
    others = _closure(roots, functions)
    return saver - others


def _object_graph_functions(object_graph: Any) -> set[str]:
    names = set(object_graph.concrete_functions)
    for node in object_graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    return names


def _node_name(tensor_name: str) -> str:
    return tensor_name.lstrip("^").split(":")[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aepipe.store.trust MODEL_DIR...``: prints each model's op types outside the
    allow-list (exit status 1 if any) and the union of all op types found, as Python sets, for
    re-deriving `ALLOWED_OPS` and `SAVER_OPS`."""
    anywhere: set[str] = set()
    in_saver: set[str] = set()
    status = 0
    for model_dir in argv if argv is not None else sys.argv[1:]:
        saved_model = read_saved_model(posixpath.join(model_dir, SAVED_MODEL))
        for op, places in model_ops(saved_model).items():
            (in_saver if all(places.values()) else anywhere).add(op)
        refused = disallowed_ops(saved_model)
        print(f"{model_dir}: " + ("; ".join(f"{op} in {_places(p)}" for op, p in refused.items())
                                  if refused else "no op outside the allow-list"))
        status |= bool(refused)
    print("ops outside the saver's functions:", sorted(anywhere))
    print("ops only in the saver's functions:", sorted(in_saver - anywhere))
    return status


if __name__ == "__main__":
    sys.exit(main())
