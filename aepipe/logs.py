"""What aepipe's jobs log, and what they keep out of the user's face.

TensorFlow's, absl's and gRPC's start-up noise is silenced; aepipe logs at INFO; Beam's
warnings show, and the Dataflow runner's progress (job id, console URL). Two filters shape
Beam's own records: a worker's exception that is an aepipe error is reported once, by the CLI,
as one line, not also with Beam's traceback; and in the DirectRunner's multi_processing mode
(and other portable runners) the workers' records, which Beam relays as protobuf text, are shown
as "worker: MESSAGE" at the levels the main process shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings

__all__ = ["quiet_startup", "configure_logging", "import_tensorflow_quietly", "aepipe_message",
           "WORKER_RELAY_LOGGER"]

# Where Beam logs a worker's exception, with its traceback, before the runner re-raises it.
_BEAM_ERROR_LOGGERS = (
    "apache_beam.runners.common",  # DoFnRunner: the exception of a DoFn, in every runner
    "apache_beam.runners.worker.sdk_worker",  # 'Error processing instruction' (gRPC workers)
    "apache_beam.runners.direct.executor",  # the bundle-based DirectRunner: 'Exception at bundle'
    "apache_beam.runners.portability.local_job_service",  # 'Error running pipeline.'
    "apache_beam.runners.dataflow.dataflow_runner",  # a Dataflow job's error messages, relayed
)


class _AepipeErrorFilter(logging.Filter):
    """Drops Beam's ERROR records of a worker's exception when that exception is (or wraps, or
    names in its traceback) an AepipeError: the CLI reports it itself, as one line. Every other
    record, and every other worker exception, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.exc_info and record.exc_info[1] is not None:
            return aepipe_message(record.exc_info[1]) is None
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format: let the handler say so
            return True
        return _qualified_aepipe_error(text) is None


_AEPIPE_ERROR_FILTER = _AepipeErrorFilter()

# Beam's local job service relays what a worker process logs (the DirectRunner's
# multi_processing mode, portable runners) as "Worker: <LogEntry as proto text>", each at its
# level, and its workers log start-up noise of their own at WARN.
WORKER_RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"
_WORKER_STARTUP_NOISE = ("No semi_persistent_directory found", "Discarding unparseable args",
                         "Resource module is not available for current platform")


# Beam's RunInference warns on the root logger, at every model load, that it cannot read memory
# use: its `resource` import shares a try block with a model manager that needs PyTorch.
_ROOT_NOISE = _WORKER_STARTUP_NOISE[2:]


class _RootNoiseFilter(logging.Filter):
    """Drops the known noise that Beam logs on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_ROOT_NOISE))


_ROOT_NOISE_FILTER = _RootNoiseFilter()


class _WorkerRelayFilter(logging.Filter):
    """Shows a worker's log entries as "worker: MESSAGE", at the levels the main process shows:
    aepipe's (and the user's own code's) from INFO up, so progress lines show; Beam's from
    WARNING up, less its workers' start-up noise; other libraries' (TensorFlow, absl...) from
    ERROR up. The job service's own records pass from WARNING up, as Beam's others do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Worker: %s" or not record.args:
            return record.levelno >= logging.WARNING
        entry = str(record.args[0])
        message = _proto_string(entry, "message")
        location = (_proto_string(entry, "log_location") or "").replace(os.sep, "/")
        if message is None:
            return record.levelno >= logging.WARNING
        if "/apache_beam/" in location:
            if record.levelno < logging.WARNING or message.startswith(_WORKER_STARTUP_NOISE):
                return False
        elif ("/site-packages/" in location or "/dist-packages/" in location) and not (
                "/aepipe/" in location or "/pipelines/" in location):
            if record.levelno < logging.ERROR:
                return False
        trace = _proto_string(entry, "trace")
        record.msg, record.args = "worker: %s", (message + (f"\n{trace}" if trace else ""),)
        return True


_WORKER_RELAY_FILTER = _WorkerRelayFilter()


def _proto_string(text: str, field: str) -> str | None:
    """A string field of a message in protobuf's text format (C-style escapes undone)."""
    found = re.search(rf'\b{field}: "((?:[^"\\]|\\.)*)"', text)
    if found is None:
        return None
    try:
        return (found.group(1).encode("utf-8").decode("unicode_escape").encode("latin-1")
                .decode("utf-8", "replace"))
    except UnicodeError:
        return found.group(1)


def quiet_startup() -> None:
    """Keeps TensorFlow's start-up noise out of the user's face, shows Beam's warnings and the
    Dataflow runner's progress (job id, console URL), logs aepipe at INFO; then imports
    TensorFlow with its C++ start-up lines silenced.

    Environment variables that are already set win, so `TF_CPP_MIN_LOG_LEVEL=0` brings it back.
    """
    configure_logging()
    import_tensorflow_quietly()


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and finds its devices with standard error silenced: its C++ start-up
    lines ignore TF_CPP_MIN_LOG_LEVEL, and finding the devices logs a failed cuInit as an error
    where CUDA's libraries are installed without a GPU. The launcher calls it, and each Beam
    worker before it loads a model (`aepipe.beam.inference`): the DirectRunner's
    multi_processing workers are processes of their own."""
    with _stderr_silenced():
        import tensorflow

        tensorflow.config.list_physical_devices()


def configure_logging() -> None:
    """The cheap part of `quiet_startup`: environment, warnings and logging, no imports."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow_transform")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("tensorflow", "absl", "tfx_bsl", "tensorflow_transform", "h5py", "google"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("apache_beam.runners.dataflow").setLevel(logging.INFO)
    # A filter on a logger sees only the records logged on that very logger, so it goes on
    # each logger that reports a worker's exception (which the CLI reports once, itself).
    for name in _BEAM_ERROR_LOGGERS:
        logging.getLogger(name).addFilter(_AEPIPE_ERROR_FILTER)
    relay = logging.getLogger(WORKER_RELAY_LOGGER)
    relay.setLevel(logging.INFO)
    relay.addFilter(_WORKER_RELAY_FILTER)
    logging.getLogger().addFilter(_ROOT_NOISE_FILTER)


@contextlib.contextmanager
def _stderr_silenced():
    """Points file descriptor 2 at /dev/null, for C++ libraries that log while they load."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _aepipe_errors() -> list[type]:
    from aepipe.errors import AepipeError

    found, todo = [AepipeError], [AepipeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def aepipe_message(error: BaseException) -> str | None:
    """The message of an AepipeError a runner re-raised inside its own exception, if any."""
    from aepipe.errors import AepipeError

    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, AepipeError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    names = "|".join(c.__name__ for c in _aepipe_errors())
    found = re.search(rf"\b(?:{names}): (.+)", str(error))
    return found.group(1).strip() if found else None


def _qualified_aepipe_error(text: str) -> str | None:
    """The message of an AepipeError in a traceback's text (`aepipe.errors.InputError: ...`)."""
    names = "|".join(re.escape(f"{c.__module__}.{c.__qualname__}") for c in _aepipe_errors())
    found = re.search(rf"(?:{names}): (.+)", text)
    return found.group(1).strip() if found else None
