"""The results file read back as a pandas DataFrame (needs the ``pandas`` extra)."""

from pathlib import Path
from typing import TYPE_CHECKING

from importer.errors import ConfigError
from importer.results.writer import COLUMNS, read_result_rows

if TYPE_CHECKING:
    import pandas as pd

TEXT_COLUMNS = [name for name in COLUMNS if name not in ("row", "http_status")]


def results_frame(path: str | Path) -> "pd.DataFrame":
    """One row per input row, in order: ``row`` as integers, ``http_status`` as nullable
    integers (``<NA>`` when no answer came), every other column as text ('' when empty).

    Works for CSV, JSON Lines and XLSX results alike, and undoes the CSV's formula guard, so a
    value reads back exactly as it was sent.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ConfigError("results_frame needs pandas: pip install 'routera-import[pandas]'"
                          ) from exc
    rows = read_result_rows(Path(path))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["row"] = frame["row"].astype("int64")
    frame["http_status"] = pd.to_numeric(frame["http_status"].replace("", None)).astype("Int64")
    for name in TEXT_COLUMNS:
        frame[name] = frame[name].fillna("").astype(str).astype("string")
    return frame
