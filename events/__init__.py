"""The event model and everything that moves or keeps events. Imports nothing of ours."""
