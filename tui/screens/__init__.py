"""One module per screen; each loads its data in workers through the app's client."""
