"""Reading and writing images and protection files."""
