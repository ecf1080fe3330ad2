"""Losses: ``nn.Module`` objectives that models and tasks share (no other part of avcorr is imported)."""

from .localization import ContrastiveLocalizationLoss, MILLogisticLoss, gather_features, max_cell_similarity

__all__ = ["ContrastiveLocalizationLoss", "MILLogisticLoss", "gather_features", "max_cell_similarity"]
