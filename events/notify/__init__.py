"""Notifications to OPDs: the message, the channels, and the dispatcher that decides when."""
