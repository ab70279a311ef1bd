"""The op check (aepipe.store.trust): aepipe's own models pass; a model directory whose SavedModel
reads or writes files or runs Python is refused before it is loaded, unless --trust-model.

The hostile model directories are copies of the trained one whose saved_model/ is replaced by a
small tf.Module with an `encode` signature of the right inputs and outputs, and whose manifest
lists the new files' digests, as anyone who can write the directory could do: the manifest check
passes, and only the op check stands in the way."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil

import numpy as np
import pytest

from aepipe.errors import ModelDirError
from aepipe.store import trust
from aepipe.store.manifest import MANIFEST, SAVED_MODEL, file_digests
from aepipe.store.reader import ModelDirectory
from aepipe.table.layout import Layout
from pipelines.cli import main


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def hostile_model_dir(trained_model_dir: str, directory, effect, name: str = "hostile") -> str:
    """A copy of the trained model whose `encode` signature also runs `effect()` (a float32
    scalar tensor, added to the outputs so that it cannot be pruned)."""
    import tensorflow as tf

    from aepipe.model.export import raw_signature

    model = ModelDirectory(trained_model_dir)
    path = os.path.join(str(directory), name)
    shutil.copytree(trained_model_dir, path)
    shutil.rmtree(os.path.join(path, SAVED_MODEL))
    first, code_size = model.schema.modelled[0].name, model.code_size

    def encode(raw):
        rows = tf.shape(raw[first])[0]
        extra = tf.reshape(tf.cast(effect(), tf.float32), [])
        return {"code": tf.zeros([rows, code_size]) + extra, "score": tf.zeros([rows]) + extra}

    module = tf.Module()
    module.encode = tf.function(encode, input_signature=[raw_signature(Layout.of(model.schema))])
    tf.saved_model.save(module, os.path.join(path, SAVED_MODEL),
                        signatures={"encode": module.encode})
    manifest_path = os.path.join(path, MANIFEST)
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["files"] = file_digests(path)  # the attacker rewrites the manifest too
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return path


def _reads(path: str):
    import tensorflow as tf

    return lambda: 0.0 * tf.cast(tf.strings.length(tf.io.read_file(path)), tf.float32)


def _writes(path: str):
    import tensorflow as tf

    def effect():
        with tf.control_dependencies([tf.io.write_file(path, "written by the model")]):
            return tf.constant(0.0)

    return effect


@pytest.fixture
def secret(tmp_path) -> str:
    path = tmp_path / "secret.txt"
    path.write_text("not for the model")
    return str(path)


def test_the_trained_model_passes(trained_model_dir):
    trust.check_model_dir(trained_model_dir)
    saved_model = trust.read_saved_model(os.path.join(trained_model_dir, SAVED_MODEL))
    assert trust.disallowed_ops(saved_model) == {}
    found = trust.model_ops(saved_model)
    # The saver's file ops are there, and only in the saver's own two functions.
    for op in ("SaveV2", "RestoreV2", "MergeV2Checkpoints"):
        assert found[op] and all(found[op].values()), (op, found[op])
        assert all("traced_save" in place or "traced_restore" in place for place in found[op])
    assert ModelDirectory(trained_model_dir).saved_model is not None


def test_the_allow_list_holds_no_file_op():
    assert not trust.ALLOWED_OPS & trust.FILE_OPS
    for op in ("ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "EagerPyFunc",
               "PyFuncStateless", "SaveV2", "RestoreV2", "MergeV2Checkpoints", "PrintV2"):
        assert op not in trust.ALLOWED_OPS


def test_a_saver_function_called_from_a_signature_is_not_the_saver_s(trained_model_dir):
    """RestoreV2 is allowed in `_traced_restore` only while nothing but the saver calls it."""
    saved_model = trust.read_saved_model(os.path.join(trained_model_dir, SAVED_MODEL))
    functions = saved_model.meta_graphs[0].graph_def.library.function
    restore = next(f.signature.name for f in functions if "traced_restore" in f.signature.name)
    encode = next(f for f in functions if f.signature.name.startswith("__inference__encode"))
    call = encode.node_def.add()
    call.name, call.op = "sneaky_call", "StatefulPartitionedCall"
    call.attr["f"].func.name = restore
    refused = trust.disallowed_ops(saved_model)
    assert "RestoreV2" in refused
    assert any(restore in place for place in refused["RestoreV2"])


def test_a_savedmodel_for_the_tensorflow_1_loader_is_refused(trained_model_dir, tmp_path):
    """Without an object graph, tf.saved_model.load runs the graph's own restore op."""
    saved_model = trust.read_saved_model(os.path.join(trained_model_dir, SAVED_MODEL))
    saved_model.meta_graphs[0].ClearField("object_graph_def")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / trust.SAVED_MODEL_PB).write_bytes(saved_model.SerializeToString())
    with pytest.raises(ModelDirError, match="TensorFlow 1 loader"):
        trust.check_saved_model(str(tmp_path / "v1"))


def test_a_model_that_reads_a_file_is_refused(trained_model_dir, tmp_path, secret):
    path = hostile_model_dir(trained_model_dir, tmp_path, _reads(secret))
    with pytest.raises(ModelDirError) as refused:
        ModelDirectory(path)
    message = str(refused.value)
    assert "ReadFile" in message and "__inference_encode" in message
    assert "--trust-model" in message and path in message


def test_a_model_that_writes_a_file_is_refused_by_the_cli(trained_model_dir, adult_files,
                                                          tmp_path, caplog):
    marker = str(tmp_path / "marker.txt")
    path = hostile_model_dir(trained_model_dir, tmp_path, _writes(marker))
    output = str(tmp_path / "out" / "codes")
    code = main(["encode", "--input", adult_files["holdout"], "--model-dir", path,
                 "--output", output])
    assert code == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "WriteFile" in errors[0] and "--trust-model" in errors[0]
    caplog.clear()
    code = main(["sample", "--model-dir", path, "--num-rows", "10", "--seed", "1",
                 "--output", str(tmp_path / "synthetic" / "rows")])
    assert code == 2 and "WriteFile" in _errors(caplog)[0]
    assert not os.path.exists(marker)
    assert not glob.glob(str(tmp_path / "out*")) and not glob.glob(str(tmp_path / "synthetic*"))


def test_a_file_op_in_a_nested_function_is_found(trained_model_dir, tmp_path, secret):
    import tensorflow as tf

    inner = tf.function(_reads(secret))
    path = hostile_model_dir(trained_model_dir, tmp_path, lambda: inner())
    with pytest.raises(ModelDirError, match="ReadFile") as refused:
        ModelDirectory(path)
    assert "function __inference_" in str(refused.value)


def test_saver_ops_in_a_signature_are_refused(trained_model_dir, tmp_path):
    import tensorflow as tf

    def effect():
        save = tf.raw_ops.SaveV2(prefix=str(tmp_path / "dump"), tensor_names=["x"],
                                 shape_and_slices=[""], tensors=[tf.zeros([1])])
        with tf.control_dependencies([save]):
            return tf.constant(0.0)

    path = hostile_model_dir(trained_model_dir, tmp_path, effect)
    with pytest.raises(ModelDirError, match="SaveV2"):
        ModelDirectory(path)


def test_a_python_function_is_refused(trained_model_dir, tmp_path):
    import tensorflow as tf

    effect = lambda: tf.py_function(lambda: np.float32(0.0), [], tf.float32)  # noqa: E731
    try:
        path = hostile_model_dir(trained_model_dir, tmp_path, effect)
    except Exception as e:  # a TensorFlow that refuses to save py_function
        pytest.skip(f"tf.py_function cannot be saved here: {e}")
    with pytest.raises(ModelDirError, match="EagerPyFunc"):
        ModelDirectory(path)


def test_workers_check_before_loading(trained_model_dir, tmp_path, secret):
    path = hostile_model_dir(trained_model_dir, tmp_path, _reads(secret))
    from aepipe.beam.inference import CoreHandler

    with pytest.raises(ModelDirError, match="ReadFile"):
        CoreHandler(path, _loaded, done="checked").load_model()
    assert CoreHandler(path, _loaded, done="checked", trust_model=True).load_model()


def _loaded(model: ModelDirectory) -> bool:
    return model.saved_model is not None


def test_trust_model_runs_it(trained_model_dir, adult_files, tmp_path, caplog):
    """With --trust-model the hostile model loads and runs, and its WriteFile does write: what
    the check keeps from running without it."""
    marker = str(tmp_path / "marker.txt")
    path = hostile_model_dir(trained_model_dir, tmp_path, _writes(marker))
    model = ModelDirectory(path, trust_model=True)
    assert "encode" in model.saved_model.signatures
    output = str(tmp_path / "out" / "codes")
    code = main(["encode", "--input", adult_files["holdout"], "--model-dir", path,
                 "--output", output, "--no-verify", "--trust-model"])
    assert code == 0, _errors(caplog)
    assert glob.glob(output + "-*.parquet")
    with open(marker) as f:
        assert f.read() == "written by the model"
