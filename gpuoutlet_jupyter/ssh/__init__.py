"""SSH config writer: one Include line, one validated file per rental."""
