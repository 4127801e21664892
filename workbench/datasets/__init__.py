"""Data sets: the registry (one entry per data set, like the layer registry) and their loaders.

``from workbench.datasets import DATASETS, dataset_info, …``: the entries, what a preset's dataset
looks like without loading it, its options' checks. :mod:`workbench.data` loads the samples onto
the training device. Nothing here imports torch.
"""
from workbench.datasets.base import (DataError, DatasetEntry, DatasetInfo, DatasetMissing, Described, LoadCancelled,
                                     LoadRequest, Progress, RawData, portable_path, resolve_path)
from workbench.datasets.registry import (DATASET_NAMES, DATASETS, OPTION_PATH, check_options, dataset_info,
                                         default_options, describe, get_dataset)

__all__ = [
    "DATASETS", "DATASET_NAMES", "OPTION_PATH", "DatasetEntry", "DatasetInfo", "Described", "RawData", "LoadRequest",
    "Progress", "DataError", "DatasetMissing", "LoadCancelled", "get_dataset", "dataset_info", "check_options",
    "default_options", "describe", "resolve_path", "portable_path",
]
