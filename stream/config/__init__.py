"""Configuration: typed settings from the environment and the YAML scoring model."""

from stream.config.errors import ConfigError

__all__ = ["ConfigError"]
