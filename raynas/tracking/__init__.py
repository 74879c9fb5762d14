"""Tracking: MLflow (batched candidates, tables, summary) and console progress."""
from raynas.tracking.mlflow_tracker import MlflowTracker, default_tracking_uri
from raynas.tracking.progress import ConsoleProgress

__all__ = ["ConsoleProgress", "MlflowTracker", "default_tracking_uri"]
