"""Reaching devices over SSH (system ssh and scp, never a prompt)."""

from edgepack.remote.ssh import Ssh, SshTarget, parse_target

__all__ = ["Ssh", "SshTarget", "parse_target"]
