"""Corral: manage large networks of virtual machines on libvirt from one project file."""

__version__ = "0.1.0"
