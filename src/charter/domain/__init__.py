"""Pure rules: no I/O, no clock, no database. Standard library only."""
