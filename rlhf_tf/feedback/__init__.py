"""Feedback collection: the SQLite feedback store and simulated labelers standing in for people."""
