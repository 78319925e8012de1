"""A run over time: the journal, resume plans, the results lock, stopping, and the runner itself."""
