"""Using a trained model: feature extraction, gallery search with pictures, ONNX export (onnx extra, lazily)."""

from mcja.inference.export import export_onnx
from mcja.inference.extract import extract_file, write_features
from mcja.inference.extractor import Extraction, FeatureExtractor
from mcja.inference.search import search_gallery
from mcja.inference.sources import ImageSet, image_source
from mcja.models.reader import resolve_image_size

__all__ = [
    "Extraction",
    "FeatureExtractor",
    "ImageSet",
    "export_onnx",
    "extract_file",
    "image_source",
    "resolve_image_size",
    "search_gallery",
    "write_features",
]
