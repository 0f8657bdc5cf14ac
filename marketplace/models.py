"""The marketplace reads services; it has no tables of its own."""
