"""Trained models as kedro-datasets' ``TensorFlowModelDataset`` stores them, loadable in any run.

The models use the project's own layers (:mod:`dam_detection.model_layers`). Keras can only
load a ``.keras`` file whose layers are registered, and they are registered when that module is
imported. A run of ``train`` imports it while building the models, but a run that only reads a
trained model (``kedro run --pipeline scan``, ``segment``, ``upload``) imports nothing that
would: loading failed with "Could not locate class 'FusedBatchNormalization'". This dataset
imports the layers before it loads, so every pipeline can read the models on its own.
"""

from __future__ import annotations

from typing import Any

from kedro_datasets.tensorflow import TensorFlowModelDataset


class KerasModelDataset(TensorFlowModelDataset):
    """``tensorflow.TensorFlowModelDataset`` that registers the project's layers before loading.

    Takes the same arguments (``filepath``, ``load_args``, ``save_args``, ...); saving is
    unchanged.

    Example:
        >>> KerasModelDataset(filepath="data/06_models/fcn.keras").load()  # doctest: +SKIP
    """

    def load(self) -> Any:
        """The model, its custom layers registered first."""
        from dam_detection import model_layers  # noqa: F401  (registers the layers on import)

        return super().load()
