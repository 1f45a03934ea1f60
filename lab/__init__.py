"""netsentry lab."""
