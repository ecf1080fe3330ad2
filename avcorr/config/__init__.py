"""Typed experiment configs: the dataclasses (:mod:`~avcorr.config.schema`), loading, overrides and
checks (:mod:`~avcorr.config.core`), and the reading of the old flat layout (``_legacy``).

A :class:`Config` has the shared sections ``data`` (root, splits, frame size, audio, loaders),
``model``, ``optim`` and ``train``, and one section per task family with its data and objective
knobs: ``avc``, ``localization``, ``tagging`` and ``separation`` (docs/configs.md).
"""

from .core import (
    ConfigError,
    apply_overrides,
    check_config,
    check_types,
    closest_keys,
    config_from_dict,
    config_to_dict,
    find_config_file,
    flat_keys,
    load_config,
    migrate_config,
    save_config,
    set_key,
)
from .schema import (
    TASK_NAMES,
    AudioConfig,
    AVCConfig,
    Config,
    DataConfig,
    LocalizationConfig,
    ModelConfig,
    OptimConfig,
    SeparationConfig,
    TaggingConfig,
    TrainConfig,
)

__all__ = [
    "TASK_NAMES", "AVCConfig", "AudioConfig", "Config", "ConfigError", "DataConfig", "LocalizationConfig",
    "ModelConfig", "OptimConfig", "SeparationConfig", "TaggingConfig", "TrainConfig", "apply_overrides",
    "check_config", "check_types", "closest_keys", "config_from_dict", "config_to_dict", "find_config_file",
    "flat_keys", "load_config", "migrate_config", "save_config", "set_key",
]
