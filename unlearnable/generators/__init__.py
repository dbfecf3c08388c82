"""Generators that ship with the package (see README, "The built-in generator")."""
