"""The hand-started engine lives in `ops.sandbox.engine` (the sandbox runs one too); tests import it from here."""

from ops.sandbox.engine import (
    DOCKER_CLI,
    ENGINES_ROOT,
    DockerEngine,
    EngineError,
    _process_start_time,
    remove_engine_folder,
    sweep_stale_engines,
)

__all__ = ["DOCKER_CLI", "ENGINES_ROOT", "DockerEngine", "EngineError", "_process_start_time",
           "remove_engine_folder", "sweep_stale_engines"]
