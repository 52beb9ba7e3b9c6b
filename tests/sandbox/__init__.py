"""Sandbox tests beyond the wire basics: KIE-worded errors, play money, the demo project, rendered results."""
