"""RentalService: create, watch, stop and persist rentals; hosted by the server or in-process."""
