"""Each pipeline as a Kedro namespace: one collapsible box in kedro-viz.

Inside the box, nodes and in-memory hand-offs are prefixed with the pipeline's name
(``train.train_classifier``, ``segment.score_maps``); across its edge the names users see stay
as they are: every input the pipeline reads, every output named ``public``, and every parameter
(``params:train`` stays ``params:train``, not ``params:train.train``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kedro.pipeline import Pipeline


def as_namespace(pipeline: Pipeline, namespace: str, public: Iterable[str]) -> Pipeline:
    """Wrap ``pipeline`` in ``namespace``, keeping its inputs, parameters and ``public`` outputs.

    Args:
        pipeline: The pipeline's nodes, wired with plain names.
        namespace: The pipeline's name.
        public: Outputs that other pipelines or users read (catalog entries, the run summary).

    Returns:
        The namespaced pipeline.

    Raises:
        ValueError: If a name in ``public`` is not an output of ``pipeline``.
    """
    public = set(public)
    unknown = public - pipeline.all_outputs()
    if unknown:
        raise ValueError(f"{namespace}: {sorted(unknown)} are not outputs of the pipeline")
    inputs = pipeline.inputs()
    return Pipeline(
        pipeline,
        namespace=namespace,
        inputs={name for name in inputs if not name.startswith("params:")},
        outputs=public,
        parameters={name for name in inputs if name.startswith("params:")},
    )
