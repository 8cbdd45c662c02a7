"""Where posts go: the interface (base.py), one module per backend, the registry by name."""
