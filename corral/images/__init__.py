"""Images: the template registry and the qemu-img helpers run copies are made with."""

from corral.images.qemuimg import ImageInfo
from corral.images.registry import DEFAULT_ROOT, Template, TemplateRegistry

__all__ = ["DEFAULT_ROOT", "ImageInfo", "Template", "TemplateRegistry"]
