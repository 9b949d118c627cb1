"""factory: a Git-native release pipeline for a modular RPM-based distribution."""

__version__ = "0.1.0"
