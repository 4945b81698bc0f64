"""Share links (issue 19, item 4)."""
