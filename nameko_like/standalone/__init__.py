"""Clients for code that is not a service: scripts, web apps, shells."""
