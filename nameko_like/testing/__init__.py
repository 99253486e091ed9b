"""Helpers for testing services and extensions built on nameko_like."""
