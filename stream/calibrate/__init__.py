"""Calibrate a scoring model to churn labels, and report how well a model predicts churn."""
