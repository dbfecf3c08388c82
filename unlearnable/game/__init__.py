"""The unlearnable-example game: payoffs and solvers."""
