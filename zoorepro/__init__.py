"""zoorepro: reproduce the numbers model-zoo documents claim, and say whether they hold."""

__version__ = "0.1.0"
