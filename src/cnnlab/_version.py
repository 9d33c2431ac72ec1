"""The version of cnnlab (its own module: every layer may ask for it)."""

__version__ = "0.1.0"
