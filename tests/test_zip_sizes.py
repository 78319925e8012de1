"""The zip-bomb check counts what a workbook's parts really unpack to, not what the zip says.

Some exporters misstate the sizes in a zip: in the local headers or data descriptors (which
neither zipfile nor calamine reads) or, overstated, in the central directory (which calamine
reads without trouble). Such honest files are read; bombs are refused whatever sizes they
declare, after unpacking no more than the limits.
"""

import struct
import zipfile
from pathlib import Path

import pytest

from importer.errors import InputError
from importer.readers import ReadOptions, open_table
from importer.readers import workbook as workbook_module

FIXTURES = Path(__file__).parent / "fixtures"
PLAIN = FIXTURES / "readable" / "workbook-simple.xlsx"
BOMB = FIXTURES / "hostile" / "zip-bomb.xlsx"
SHEET = b"xl/worksheets/sheet1.xml"
LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"


def _entry(data: bytes, signature: bytes, name: bytes) -> int:
    """Offset of the local or central header of the entry ``name``."""
    at = data.find(signature)
    name_at = 26 if signature == LOCAL else 28
    header = 30 if signature == LOCAL else 46
    while at >= 0:
        length = struct.unpack_from("<H", data, at + name_at)[0]
        if data[at + header:at + header + length] == name:
            return at
        at = data.find(signature, at + 4)
    raise AssertionError(f"no entry {name!r}")


def _patched(source: Path, target: Path, edits: list[tuple[bytes, int, int]]) -> Path:
    """The zip with 32-bit fields changed: (header signature, offset in the header, value)."""
    data = bytearray(source.read_bytes())
    for signature, offset, value in edits:
        struct.pack_into("<I", data, _entry(bytes(data), signature, SHEET) + offset, value)
    target.write_bytes(bytes(data))
    return target


def _cells(path: Path) -> list[list[str]]:
    return [cells for batch in open_table(path, ReadOptions()).batches() for cells in batch.cells]


def _data_descriptor(source: Path) -> int:
    """Offset of the sheet's data descriptor sizes, relative to its local header (LibreOffice
    writes sizes there, and zeros in the local header)."""
    data = source.read_bytes()
    local = _entry(data, LOCAL, SHEET)
    central = _entry(data, CENTRAL, SHEET)
    packed = struct.unpack_from("<I", data, central + 20)[0]
    names, extra = struct.unpack_from("<HH", data, local + 26)
    descriptor = 30 + names + extra + packed
    assert data[local + descriptor:local + descriptor + 4] == b"PK\x07\x08"
    return descriptor + 8


@pytest.mark.parametrize("size", [50 << 20, 0xFFFFFFFF])
def test_an_overstated_size_in_the_central_directory_is_read(size: int, tmp_path: Path) -> None:
    """50 MB declared for a 6 KB sheet looked like a zip bomb when declared sizes were
    trusted; 0xFFFFFFFF looked like 4 GB."""
    sloppy = _patched(PLAIN, tmp_path / "sloppy.xlsx", [(CENTRAL, 24, size)])
    assert _cells(sloppy) == _cells(PLAIN)


def test_wrong_sizes_in_local_headers_and_data_descriptors_are_read(tmp_path: Path) -> None:
    descriptor = _data_descriptor(PLAIN)
    sloppy = _patched(PLAIN, tmp_path / "sloppy.xlsx", [
        (LOCAL, 18, 999), (LOCAL, 22, 99_999),
        (LOCAL, descriptor, 17), (LOCAL, descriptor + 4, 123_456_789)])
    assert _cells(sloppy) == _cells(PLAIN)


def test_a_damaged_part_nobody_reads_is_not_the_workbook_s_damage(tmp_path: Path) -> None:
    """A thumbnail whose checksum is wrong is unpacked (and counted) but not judged; the same
    damage in a part the reader parses refuses the file."""
    with_thumbnail = tmp_path / "thumbnail.xlsx"
    with zipfile.ZipFile(PLAIN) as source, zipfile.ZipFile(with_thumbnail, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("docProps/thumbnail.jpeg", bytes(range(256)) * 40,
                        zipfile.ZIP_DEFLATED)
    data = bytearray(with_thumbnail.read_bytes())
    for name, target_path in ((b"docProps/thumbnail.jpeg", tmp_path / "bad-thumbnail.xlsx"),
                              (SHEET, tmp_path / "bad-sheet.xlsx")):
        damaged = bytearray(data)
        central = damaged.rfind(name) - 46
        damaged[central + 16:central + 20] = b"\0\0\0\0"  # the part's CRC-32
        target_path.write_bytes(bytes(damaged))
    assert _cells(tmp_path / "bad-thumbnail.xlsx") == _cells(PLAIN)
    with pytest.raises(InputError, match="the workbook is damaged"):
        open_table(tmp_path / "bad-sheet.xlsx", ReadOptions())


def test_a_bomb_that_understates_its_size_is_refused_as_damaged(tmp_path: Path) -> None:
    """zipfile stops the part at its declared size and its CRC fails (calamine refuses such a
    part too), so the lie costs one megabyte of work."""
    liar = _patched(BOMB, tmp_path / "liar.xlsx", [(CENTRAL, 24, 1 << 20)])
    with pytest.raises(InputError, match="the workbook is damaged"):
        open_table(liar, ReadOptions())


def test_a_compressed_size_larger_than_the_file_does_not_hide_a_bomb() -> None:
    """The ratio is taken against the declared compressed size, but never more than the file:
    a part declaring 4 GB compressed cannot make 544 MB look like a modest ratio. (zipfile
    itself soon finds such a part running past the end of the file: damaged.)"""
    part = zipfile.ZipInfo("xl/worksheets/sheet1.xml")
    part.compress_size = 0xFFFFFF00
    unpacked = workbook_module._Unpacked(BOMB, BOMB.stat().st_size)
    chunk = 1 << 20
    with pytest.raises(InputError, match="the shape of a zip bomb"):
        for done in range(chunk, 1 << 30, chunk):
            unpacked.add(part, done, chunk)
    assert unpacked.total <= workbook_module.MAX_RATIO * BOMB.stat().st_size + chunk


def test_a_bomb_is_refused_after_unpacking_no_more_than_the_ratio_allows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = [0]
    counted = workbook_module._Counted.read

    def read(self: workbook_module._Counted, size: int = -1) -> bytes:
        try:
            return counted(self, size)
        finally:
            seen.append(self.count)

    monkeypatch.setattr(workbook_module._Counted, "read", read)
    with pytest.raises(InputError, match="the shape of a zip bomb"):
        open_table(BOMB, ReadOptions())
    with zipfile.ZipFile(BOMB) as archive:
        limit = workbook_module.MAX_RATIO * archive.getinfo(SHEET.decode()).compress_size
    assert limit < max(seen) <= limit + (1 << 20)


def test_a_workbook_unpacking_to_more_than_the_limit_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real limit is 1 GiB; counted over every part, whatever the zip declares."""
    monkeypatch.setattr(workbook_module, "MAX_UNCOMPRESSED", 10_000)
    with pytest.raises(InputError, match=r"unpacks to more than 0 MB from 0\.0 MB, more than a "
                                         r"workbook reader can hold"):
        open_table(PLAIN, ReadOptions())
