"""Datasets in their published layouts, synthetic sets, caching, sampling and batched augmentation."""

from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset, columns

__all__ = ["INFRARED", "VISIBLE", "Sample", "VIDataset", "columns"]

from mcja.data.readers import DATASETS, load_dataset  # noqa: E402  (appended below the existing lines)

__all__ += ["DATASETS", "load_dataset"]
