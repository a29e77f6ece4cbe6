"""The circle detector's model directory as a repository source: its versions and their runtimes.

The directory is a model folder (`circle-detector export --output`: one version, the model's
own), or holds one model folder per version (`export --repository`, KServe's `--model_dir`):
then the subfolder's name is the version, as in Triton's model repository. A BentoML
model-store entry is a model folder. Reading the directory never writes to it.
"""

from __future__ import annotations

from pathlib import Path

from ..admission import Budget
from ..model.artifacts import model_versions, read_metadata
from ..model.detector import CircleDetector
from ..settings import BentoSettings
from .circle import CircleRuntime


class CircleSource:
    """Builds `CircleRuntime`s for the versions of one model directory, from the settings."""

    def __init__(self, directory: Path, settings: BentoSettings, pixel_budget: Budget) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.pixel_budget = pixel_budget
        newest = model_versions(self.directory)[-1]  # ModelFileError: no model there
        #: The name it is served under (KServe's `--model_name`), by default the model's own.
        self.name = settings.model_name or read_metadata(newest)[0].name

    def versions(self) -> dict[str, Path]:
        folders = model_versions(self.directory)
        if folders == [self.directory]:
            return {read_metadata(self.directory)[0].version: self.directory}
        return {folder.name: folder for folder in folders}

    def load(self, version: str, folder: Path) -> CircleRuntime:
        settings = self.settings
        detector = CircleDetector.load(folder, settings.runtime, settings.threads)
        return CircleRuntime(
            detector,
            name=self.name,
            version=version,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
            max_queue_size=settings.max_queue_size,
            max_in_flight=settings.max_in_flight,
            max_pixels=settings.max_pixels,
            max_images=settings.max_images,
            max_request_pixels=settings.max_request_pixels or None,
            threads=settings.preprocess_threads,
            pixel_budget=self.pixel_budget,
        )
