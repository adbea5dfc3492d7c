"""The spicecross command line."""
