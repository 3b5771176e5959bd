"""Test-wide settings: this machine is shared and noisy, so Hypothesis never times inputs."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "noisy-machine",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("noisy-machine")
