"""Deployment: the step-4 RGB-only model as a self-describing bundle (safetensors, ONNX), and prediction on raw
RGB videos."""
