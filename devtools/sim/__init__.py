"""A simulator of realistic customers producing events to the three input topics."""
