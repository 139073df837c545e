"""Figures that need images or the model: activation maps, ranked lists with thumbnails, the `--figures` set.

Feature-only figures (ROC, similarity histograms, t-SNE, CMC) live in `mcja.evaluation`. This package may import
`mcja.evaluation`, never the reverse.
"""

from mcja.visualize.pictures import ranked_list_image, ranked_list_pictures, save_ranked_list, top_k

__all__ = ["ranked_list_image", "ranked_list_pictures", "save_ranked_list", "top_k"]
