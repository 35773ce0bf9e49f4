"""Use cases: one database transaction each — authorise, check the rules, change, audit."""
