"""``evaluate`` as a pipeline step: the recipe's metric of the .tflite on the val data."""

from __future__ import annotations

from pydantic import Field

from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Step, StepParams


class EvaluateParams(StepParams):
    """How the .tflite is run over the data; shared by the step and ``edgepack evaluate``."""

    batch_size: int = Field(default=64, ge=1, description="Rows per interpreter call where the model allows it.")
    threads: int | None = Field(default=None, ge=1, le=256, description="Interpreter threads (default: all cores).")


class EvaluateStep(Step):
    """The metric of the .tflite on data.val (scored once; the pipeline reuses the figure)."""

    name = "evaluate"
    params = EvaluateParams
    consumes = produces = ModelKind.TFLITE
    measures = True
    summary = "the metric of the .tflite on the val data (LiteRT interpreter)"

    def run(self, ctx, source: ModelArtifact, params: EvaluateParams) -> ModelArtifact:
        if ctx.scorer is None:
            return source
        return source.model_copy(update={"metric": ctx.scorer.score(source, batch_size=params.batch_size,
                                                                     threads=params.threads)})
