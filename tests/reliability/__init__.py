"""Issue 7: reliability under faults, bad input, interruption and concurrency."""
