"""Sending rows: HTTP client, deadlines, delivery and retries, throttle, workers, repeats."""
