"""``evaluate`` as a pipeline step: the recipe's metric of the .tflite on the val data."""

from __future__ import annotations

from edgepack.evaluation.params import EvaluateParams
from edgepack.steps.artifacts import ModelArtifact
from edgepack.steps.base import ModelKind, Step


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
