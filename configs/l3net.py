# The L3-Net baseline (concatenated features, fc-fc classifier) at the quickstart sizes of avenet.py.
from .avenet import config as _avenet
import copy

config = copy.deepcopy(_avenet)
config.model.name = "l3net"
config.model.kwargs = {}  # no visual_pool: L3-Net concatenates pooled features, it has no cells to match
config.avc.loss = "pairs"  # L3-Net has no embedding distance to contrast: the paper's positive / negative pairs
