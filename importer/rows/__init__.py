"""One row's verdict: problem codes, outcomes, validation, and the index of keys seen."""
