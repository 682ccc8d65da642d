import pytest

from corral.model.units import SizeError, parse_size_mib


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("128M", 128),
        ("256MB", 256),
        ("2GB", 2048),
        ("1G", 1024),
        ("1g", 1024),
        ("512", 512),
        ("512k", 1),
        ("512K", 1),
        ("2049k", 3),
        ("1T", 1024 * 1024),
        ("1.5G", 1536),
        ("64MiB", 64),
    ],
)
def test_sizes_are_binary_and_plain_numbers_are_mib(text: str, mib: int) -> None:
    assert parse_size_mib(text) == mib


@pytest.mark.parametrize("text", ["", "M", "12X", "-5M", "1 2", "0", "0k", "5MBB"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size_mib(text)
