"""routera-import: load spreadsheet exports into the Routera CRM, every row exactly once."""

__version__ = "0.1.0"
