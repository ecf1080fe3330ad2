# The L3-Net baseline (concatenated features, fc-fc classifier) at the quickstart sizes of avenet.py.
from .avenet import config as _avenet
import copy

config = copy.deepcopy(_avenet)
config.model.name = "l3net"
