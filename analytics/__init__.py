"""Frames in, detections and incidents out."""
