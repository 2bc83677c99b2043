"""Models-from-code entry point of the registered UFVideo pyfunc: MLflow copies this file into every logged model
and executes it on load, so a version is rebuilt from the installed `ufvideo` code instead of being unpickled.
"""

from __future__ import annotations

import mlflow.models

from ufvideo.registry.pyfunc import UFVideoModel

mlflow.models.set_model(UFVideoModel())
