"""The libvirt backend: one module per concern, composed by :mod:`.backend`."""
