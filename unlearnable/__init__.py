"""unlearnable: protect image folders from unauthorized training with imperceptible noise."""

__version__ = "0.1.0"
