"""Losses: ``nn.Module`` objectives that models and tasks share (no training-engine imports)."""

from .localization import ContrastiveLocalizationLoss, MILLogisticLoss, gather_features, max_cell_similarity

__all__ = ["ContrastiveLocalizationLoss", "MILLogisticLoss", "gather_features", "max_cell_similarity"]
