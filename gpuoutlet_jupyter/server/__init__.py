"""The jupyter-server extension: thin handlers over RentalService."""
