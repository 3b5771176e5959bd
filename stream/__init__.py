"""engagement-stream: live customer engagement scores and churn-risk alerts."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("engagement-stream")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
