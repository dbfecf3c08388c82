"""Generators that ship with the package (docs/label-free.md, "The built-in generator")."""
