"""Storage drivers behind one small, filesystem-like interface, and the layout they share."""
