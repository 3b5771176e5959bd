"""engagement-stream: live customer engagement scores and churn-risk alerts."""

__all__ = ["__version__"]

__version__ = "0.1.0"
