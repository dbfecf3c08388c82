"""The command-line interface: the only place that imports Typer or draws progress bars."""
