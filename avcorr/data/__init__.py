"""Data: the dataset layout, decoding, datasets and the embedded synthetic dataset.

Imports no other part of avcorr (rules in :mod:`avcorr`). What other packages use is public:
``records`` (the clip record, label space and manifest every format is read into), ``layout`` (the
vid2genre layout), ``decode`` (video / audio reading), ``wav`` (torch-free WAV
parsing), ``skipped`` (the ``skipped.csv`` of a command), the datasets (``avc``, ``localization``,
``separation``, ``tagging``, ``embed``), the shard reader ``shards`` and the streams of shards
(``avc_stream``, ``localization_stream``, ``separation_stream``) and ``synthetic``; ``_``-modules are
this package's own.
"""
