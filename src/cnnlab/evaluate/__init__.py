"""Evaluation: metrics, prediction on image files, confusion matrices."""

from .metrics import evaluate_model, per_class_accuracy

__all__ = ["evaluate_model", "per_class_accuracy"]
