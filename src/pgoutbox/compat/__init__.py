"""Translations of the settings dicts of the libraries pgoutbox replaces."""
