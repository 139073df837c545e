"""Datasets in their published layouts, synthetic sets, caching, sampling and batched augmentation."""

from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset, columns

__all__ = ["INFRARED", "VISIBLE", "Sample", "VIDataset", "columns"]
