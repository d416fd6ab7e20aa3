"""Notebook side: magics, widgets, progress, finding the server from a kernel."""
