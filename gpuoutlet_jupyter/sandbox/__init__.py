"""A local implementation of the rentals API server side, with real SSH pods."""
