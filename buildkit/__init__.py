"""imgbuild: build, ship and measure the ruby -> base -> app image chain of a Rails app."""

__version__ = "0.1.0"
