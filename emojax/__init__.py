"""emojax: emotion-intensity estimation and emotion-reward RL in JAX."""

__version__ = "0.1.0"
