"""Figures that need images or the model: activation maps, ranked lists with thumbnails, the `--figures` set.

Feature-only figures (ROC, similarity histograms, t-SNE, CMC) live in `mcja.evaluation`.
"""
