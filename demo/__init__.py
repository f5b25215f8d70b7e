"""The miniature trading platform drc watches in the demo and the tests."""
