"""Incident rules: each a small class with explicit state fed one frame's detections at a time."""
