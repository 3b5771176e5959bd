"""The ``engagement`` command line."""
