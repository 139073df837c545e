"""Datasets in their published layouts, synthetic sets, caching, sampling and batched augmentation."""

from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset, columns
from mcja.data.registry import DATASET_NAMES, DATASETS, DatasetSpec, load_dataset

__all__ = ["DATASETS", "DATASET_NAMES", "INFRARED", "VISIBLE", "DatasetSpec", "Sample", "VIDataset", "columns",
           "load_dataset"]
