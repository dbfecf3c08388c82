"""Reading and writing images and generator files."""
