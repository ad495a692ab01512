"""The FastAPI app and the wall page."""
