"""netsentry serve."""
