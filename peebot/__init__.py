"""The composition root: the `peebot` command line, the `peebot up` supervisor, the status
overview. The only package that imports the others (docs/ARCHITECTURE.md)."""
