"""Tracking: MLflow (batched candidates, outage-safe spool, tables, plots, export) and console progress."""
from raynas.tracking.mlflow_tracker import MlflowTracker, default_tracking_uri
from raynas.tracking.progress import ConsoleProgress

__all__ = ["ConsoleProgress", "MlflowTracker", "default_tracking_uri"]
