"""The command line: ``postbote``."""
