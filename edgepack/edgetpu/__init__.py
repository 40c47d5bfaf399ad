"""The Coral Edge TPU compiler: run it where it is installed, and read what it says."""
