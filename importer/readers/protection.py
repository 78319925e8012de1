"""Workbooks locked only with Excel's default password, which Excel opens without asking.

Excel encrypts an XLS whose workbook structure is protected (and LibreOffice does the same when
it saves one), and some exporters encrypt XLSX files so that they open read-only, with the
password Excel itself knows, ``VelvetSweatshop``. A person opening such a file sees no password
prompt, so refusing it as password-protected would be wrong. msoffcrypto-tool decrypts it with
that password in memory (XLS: RC4 and RC4 CryptoAPI, through an unnamed temporary file the
library deletes as it closes it; XLSX: ECMA-376 standard and agile), and
the decrypted workbook then goes through every check a plain one does (zip bombs, XML
entities). Any other password is refused with the same line as before: the tool never asks
for, guesses or stores a password.
"""

import io
from pathlib import Path
from typing import Any

import msoffcrypto
from msoffcrypto.format.ooxml import OOXMLFile
from msoffcrypto.format.xls97 import Xls97File

from importer.readers.table import password_protected

__all__ = ["unlocked"]

DEFAULT_PASSWORD = "VelvetSweatshop"
MAX_SPIN_COUNT = 500_000
"""Agile encryption hashes the password as many times as the file says (Excel writes
100,000, about 0.15 s here; the format allows 10,000,000); a file asking for more than five
times Excel's count is refused rather than left to spin."""


def unlocked(path: Path) -> bytes:
    """The workbook decrypted with Excel's default password; ``PasswordProtected`` when that is
    not its password (or it cannot be decrypted at all)."""
    try:
        with path.open("rb") as file:
            office = msoffcrypto.OfficeFile(file)
            _load_default_key(office)
            plain = io.BytesIO()
            office.decrypt(plain)
    except Exception as exc:  # any failure of a hostile or unknown file means: locked
        raise password_protected(path) from exc
    return plain.getvalue()


def _load_default_key(office: Any) -> None:
    if isinstance(office, OOXMLFile):
        if office.type == "agile" and int(office.info["spinValue"]) > MAX_SPIN_COUNT:
            raise ValueError("agile encryption with an unusual spin count")
        office.load_key(password=DEFAULT_PASSWORD, verify_password=True)
    elif isinstance(office, Xls97File):
        office.load_key(password=DEFAULT_PASSWORD)  # always verified
    else:
        raise ValueError(f"not a workbook: {type(office).__name__}")
