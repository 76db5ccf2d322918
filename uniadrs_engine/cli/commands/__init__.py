"""Sub-commands of the ``uniadrs`` command line, one module each."""
