"""Data: the dataset layout, decoding, datasets and the embedded synthetic dataset."""
