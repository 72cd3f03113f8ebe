"""Small real data sets written to disk for the demos and the end-to-end tests."""
