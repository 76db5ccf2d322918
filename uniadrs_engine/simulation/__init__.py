"""simulation subpackage."""
