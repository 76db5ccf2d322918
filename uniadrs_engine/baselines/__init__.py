"""baselines subpackage."""
