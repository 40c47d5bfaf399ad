"""Device profiles (``devices/*.yaml``): schema and loader."""

from edgepack.devices.loader import DEVICES_DIR, device_files, list_devices, load_device, load_device_file
from edgepack.devices.schema import (Accelerator, Anchor, Connection, DeviceProfile, EstimateFigures, Gmacs,
                                     Mode, Runtime, Throughput)

__all__ = ["DEVICES_DIR", "device_files", "list_devices", "load_device", "load_device_file", "Accelerator",
           "Anchor", "Connection", "DeviceProfile", "EstimateFigures", "Gmacs", "Mode", "Runtime", "Throughput"]
