"""The baseline: the import script people write instead of using routera-import.

It is kept the way a typical ops engineer writes it, so the benchmark compares against what
people actually run: pandas to read the file, ``iterrows``, and one plain ``requests.post`` per
row, sequentially, without a session (a new connection for every row). It is not sabotaged: it
sends the same fields with the same values as the importer's mapping in ``bench.py`` does.

``dtype=str, keep_default_na=False`` is what such a script ends up with after its first run:
without them pandas turns ``02134`` into ``2134`` and empty cells into ``NaN``, which the API
refuses (or, worse, stores). It costs nothing here; the run is bound by the API's latency.

Usage: ROUTERA_API_TOKEN=... python bench/naive.py contacts.csv http://127.0.0.1:8765
Prints one line: ``<created> of <rows> rows created``.
"""

import os
import sys

import pandas as pd
import requests

COLUMNS = {
    "external_id": "Customer ID",
    "first_name": "First Name",
    "last_name": "Last Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "postal_code": "Zip",
    "signup_date": "Signup Date",
    "notes": "Notes",
}
LEAD_SOURCE = "routera-bench"


def main(path: str, base_url: str) -> int:
    token = os.environ["ROUTERA_API_TOKEN"]
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    created = 0
    for _, row in df.iterrows():
        fields = {name: row[column].strip() for name, column in COLUMNS.items()}
        fields["email"] = fields["email"].lower()
        fields = {name: value for name, value in fields.items() if value}
        fields["lead_source"] = LEAD_SOURCE
        response = requests.post(f"{base_url}/contacts", json={"fields": fields},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if response.status_code == 201:
            created += 1
    print(f"{created} of {len(df)} rows created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
