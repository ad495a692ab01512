"""Cameras and frames: capture, health, recording. Knows nothing of YOLO or incidents."""
