"""The model: targets (heatmaps.py), augmentation, datasets, networks (models/), the
training loop (engine.py, training.py), evaluation and metrics, and prediction (predict.py).

Likelihood calibration lands here. Imports io/ and viz/, never analysis/ or above.
"""
