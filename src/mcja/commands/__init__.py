"""Argument parsers of the `mcja` verbs, one module per group; each calls into `mcja.api`."""
